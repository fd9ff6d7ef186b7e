"""The main job's driver (tools/synthetic_benchmark.py and
mme_plugin/benchmark/): what it runs, what it counts as informative, and
what it reports, on hand-made results."""
import importlib.util
import os.path as osp

import pytest

from .conftest import REPO


@pytest.fixture(scope='module')
def sb():
    import mme_plugin.benchmark as bm
    return bm


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'synthetic_benchmark', osp.join(REPO, 'tools',
                                        'synthetic_benchmark.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Probes:
    """A stand-in :class:`~mme_plugin.benchmark.Probe`: ``fn`` for the
    frozen probes; records what is fine-tuned with few labels."""

    def __init__(self, fn):
        self.fn = fn
        self.low_labelled = []

    def __call__(self, ckpt, seed):
        return self.fn(ckpt, seed)

    def low_label(self, ckpt, seed):
        self.low_labelled.append(ckpt)
        return dict(test_acc=0.2, train_acc=1.0, per_class=5)


def _print_env(runner, name):
    return runner.run(name, [
        '-c', "import os; print('policy', os.environ['OMP_WAIT_POLICY'])"])


def test_tools_run_with_passive_openmp_unless_the_caller_chose(
        sb, tmp_path, monkeypatch):
    r = sb.BenchmarkRun(str(tmp_path), 'unused')
    monkeypatch.delenv('OMP_WAIT_POLICY', raising=False)
    assert 'policy PASSIVE' in _print_env(r, 'default')
    monkeypatch.setenv('OMP_WAIT_POLICY', 'ACTIVE')
    assert 'policy ACTIVE' in _print_env(r, 'chosen')
    with pytest.raises(SystemExit, match=r'failing failed \(3\).*failing'):
        r.run('failing', ['-c', 'raise SystemExit(3)'])


def _seed(seed, ratios, probes):
    """One seed's results: loss ratios per method, probe test accuracy per
    encoder."""
    pre = {m: dict(losses={name: dict(end=r, trivial=1.0, ratio=r, zero=1.0,
                                      mean=1.0)
                           for name, r in losses.items()})
           for m, losses in ratios.items()}
    return dict(seed=seed, pretrain=pre,
                probe={k: dict(test_acc=v, train_acc=v)
                       for k, v in probes.items()})


def test_a_method_is_ranked_only_if_every_loss_left_its_level_every_seed(
        sb):
    # mme: both terms below 0.9 in both seeds; videomae: pixels at 0.95 in
    # seed 1 only
    results = [
        _seed(0, dict(mme=dict(traj=0.8, hog=0.85), videomae=dict(pixel=0.8)),
              {'random init': 0.125, 'mme': 0.5, 'videomae': 0.3}),
        _seed(1, dict(mme=dict(traj=0.7, hog=0.9), videomae=dict(pixel=0.95)),
              {'random init': 0.15, 'mme': 0.45, 'videomae': 0.2}),
    ]
    assert sb.informative(results, 'mme')[0]
    ok, why = sb.informative(results, 'videomae')
    assert not ok and 'pixel ends at 0.950' in why
    table = sb.summarize(results, ['videomae', 'mme'], num_test=400)
    # mme ranked against random init, per seed: +37.5 and +30.0 points
    assert 'mme probe - random-init probe: +33.8 points (seeds: +37.5, ' \
        '+30.0)' in table
    assert '- videomae: uninformative, not ranked (pixel ends at 0.950' \
        in table
    assert '| videomae | pixel | 0.8750 | 1.0000 | 1.0000 | 0.950 | not ' \
        'clearly below its trivial level (> 0.9) |' in table
    assert '| mme | hog | 0.8750 | 1.0000 | 1.0000 | 0.900 | learned |' \
        in table
    assert [sb.loss_state(r) for r in (0.9, 0.9001, 0.979, 0.98, 1.01)] == [
        'learned', *['not clearly below its trivial level (> 0.9)'] * 2,
        *['at its trivial level'] * 2]
    assert 'chance 12.5 % (standard error 1.7 points at chance)' in table
    # results written before the spread was measured say so
    assert '| random init | 13.8 +- 1.8 | 13.8 +- 1.8 | not measured | ' \
        'not measured | not measured | reference |' in table
    results[0]['probe']['mme'].update(relative_spread=0.05,
                                      participation_ratio=1.5)
    results[1]['probe']['mme'].update(relative_spread=0.07,
                                      participation_ratio=2.5)
    assert '| 0.060 (2.0) | not measured | informative |' in sb.summarize(
        results, ['videomae', 'mme'], num_test=400)
    # the collapse measures: mean constant share (mean of each seed's
    # largest block singular value ratio)
    results[0]['probe']['mme'].update(constant_share=0.95,
                                      sv_ratio=[6.0, 2.0])
    results[1]['probe']['mme'].update(constant_share=0.97,
                                      sv_ratio=[2.0, 4.0])
    assert '| 0.060 (2.0) | 0.960 (5.0) | informative |' in sb.summarize(
        results, ['videomae', 'mme'], num_test=400)
    # the motion-regression read-out: mean R^2 (translation R^2)
    results[0]['probe']['mme'].update(motion_r2=0.1, translation_r2=0.3)
    results[1]['probe']['mme'].update(motion_r2=0.3, translation_r2=0.5)
    assert '| 0.20 (0.40) | 0.060 (2.0) |' in sb.summarize(
        results, ['videomae', 'mme'], num_test=400)
    # the supervised encoder's row, over the seeds that trained it (the
    # main job: seed 0 only)
    assert 'positive control' not in sb.summarize(
        results, ['videomae', 'mme'], num_test=400)
    results[0]['probe']['supervised'] = dict(test_acc=0.5, train_acc=0.9,
                                             motion_r2=0.5,
                                             translation_r2=0.55,
                                             within_class_r2=0.25)
    assert '| supervised (seeds [0]) | 50.0 | 90.0 | 0.50 (0.55) / 0.25 | ' \
        'not measured | not measured | positive control' in sb.summarize(
            results, ['videomae', 'mme'], num_test=400)
    results[1]['probe']['supervised'] = dict(test_acc=0.6, train_acc=0.9,
                                             motion_r2=0.7,
                                             translation_r2=0.65)
    assert '| supervised (seeds [0, 1]) | 55.0 +- 7.1 | 90.0 +- 0.0 | ' \
        '0.60 (0.60) | not measured' in sb.summarize(
            results, ['videomae', 'mme'], num_test=400)
    # the low-label fine-tune's table: only when every seed has it, each
    # encoder against random init per seed
    assert 'labelled clips per class' not in sb.summarize(
        results, ['videomae', 'mme'], num_test=400)
    for x, accs in zip(results, ((0.125, 0.25, 0.5), (0.15, 0.1, 0.4))):
        x['low_label'] = {
            enc: dict(test_acc=a, train_acc=1.0, per_class=5)
            for enc, a in zip(('random init', 'videomae', 'mme'), accs)}
    table = sb.summarize(results, ['videomae', 'mme'], num_test=400)
    assert '| encoder (fine-tuned, 5 labelled clips per class) |' in table
    assert '| random init | 13.8 +- 1.8 | 100.0 +- 0.0 | - |' in table
    assert '| videomae | 17.5 +- 10.6 | 100.0 +- 0.0 | +12.5, -5.0 |' \
        in table
    assert '| mme | 45.0 +- 7.1 | 100.0 +- 0.0 | +37.5, +25.0 |' in table
    from mme_plugin.benchmark.report import _low_label_table
    assert _low_label_table([], ['mme']) is None  # no seed: no table


def test_final_checkpoint_is_probed_once_per_seed(sb, tmp_path,
                                                  monkeypatch):
    """Seed 0 probes every checkpoint for the curve; the last one is the
    final probe, not a second identical run."""
    commands = []

    class FakeRunner(sb.BenchmarkRun):
        def run(self, name, args):
            commands.append(args)
            pre = args[args.index('--work-dir') + 1]
            for e in (10, 20):
                p = tmp_path / pre / f'epoch_{e}.pth'
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b'')
            return ''

    calls = []

    def probe(ckpt, seed):
        calls.append(ckpt)
        return dict(test_acc=0.1 * len(calls), train_acc=0.0)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sb.BenchmarkRun, 'flow_opts', lambda self, c: [])
    probes = _Probes(probe)
    res = sb.run_seed(FakeRunner('w', 'd', ['model.x=1']), probes,
                      ['videomae'], 0, {'videomae': {}}, long=False,
                      supervised=False)
    assert commands[0][-1] == 'model.x=1'  # --pretrain-options reach it
    assert [c and osp.basename(c) for c in calls] == [
        None, 'epoch_20.pth', 'epoch_10.pth']
    # the low-label fine-tune: random init and the final checkpoint only
    assert [c and osp.basename(c) for c in probes.low_labelled] == [
        None, 'epoch_20.pth']
    assert set(res['low_label']) == {'random init', 'videomae'}
    assert res['probe_curve']['videomae'] == [
        (10, pytest.approx(0.3)), (20, res['probe']['videomae']['test_acc'])]


def test_pretrain_options_parse_like_cfg_options(sb):
    key = 'train_dataloader.dataset.pipeline_edits.TubeMasking.mask_ratio'
    assert sb.parse_options([f'{key}=0.5', 'a.b=[1,2]', 'c=x']) == {
        key: 0.5, 'a.b': [1, 2], 'c': 'x'}
    with pytest.raises(SystemExit, match="KEY=VALUE, got 'mask_ratio'"):
        sb.parse_options(['mask_ratio'])


def test_rescore_keeps_the_logged_ends_and_recomputes_the_ratios(sb):
    results = [_seed(0, dict(mme=dict(traj=0.8)), {'random init': 0.1})]
    results[0]['pretrain']['mme']['losses']['traj']['end'] = 0.045
    sb.rescore(results, {'mme': {'traj': dict(zero=0.06, mean=0.05)}})
    loss = results[0]['pretrain']['mme']['losses']['traj']
    assert loss == dict(end=0.045, trivial=0.05, ratio=pytest.approx(0.9),
                        zero=0.06, mean=0.05)


def test_rescore_run_writes_rescored_results(sb, tmp_path, monkeypatch):
    import json
    results = [_seed(0, dict(mme=dict(traj=0.95)), {'random init': 0.1,
                                                     'mme': 0.1})]
    (tmp_path / 'results.json').write_text(json.dumps(dict(
        levels={}, results=results)))
    ckpt = tmp_path / 'seed0' / 'mme' / 'pretrain' / 'epoch_20.pth'
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b'')
    from mme_plugin.benchmark import jobs
    monkeypatch.setattr(jobs, 'levels_of', lambda m, root, opts: {
        'traj': dict(zero=2.0, mean=1.9)})

    class FakeProbe:
        def __init__(self, root):
            pass

        def __call__(self, ck, seed):
            acc = 0.5 if ck and ck.endswith('epoch_20.pth') else 0.125
            return dict(test_acc=acc, train_acc=acc, relative_spread=0.2,
                        participation_ratio=3.0, constant_share=0.5,
                        sv_ratio=[2.5, 3.0], motion_r2=0.25,
                        translation_r2=0.5)

        def low_label(self, ck, seed):
            acc = 0.375 if ck and ck.endswith('epoch_20.pth') else 0.25
            return dict(test_acc=acc, train_acc=1.0, per_class=5)

    monkeypatch.setattr(jobs, 'Probe', FakeProbe)
    sb.rescore_run(str(tmp_path), 'unused', [], num_test=400)
    out = json.loads((tmp_path / 'results_rescored.json').read_text())
    loss = out['results'][0]['pretrain']['mme']['losses']['traj']
    assert loss['ratio'] == pytest.approx(0.95 / 1.9)
    table = (tmp_path / 'results_rescored.md').read_text()
    assert '| mme | 50.0 | 50.0 | 0.25 (0.50) | 0.200 (3.0) | 0.500 (3.0) ' \
        '| informative |' in table
    # the low-label fine-tune is run again too, against random init
    assert '| mme | 37.5 | 100.0 | +12.5 |' in table
    assert '| random init | 25.0 | 100.0 | - |' in table


def test_probe_reports_the_collapse_measures_of_the_test_tokens(sb):
    """Probe.__call__ on a tiny stand-in encoder and dataset: the constant
    share is that of the last block's test tokens, and a last block that
    adds one large constant vector pushes it above 0.9."""
    import torch
    from mmaction.structures import ActionDataSample

    from mme_plugin.evaluation import block_sv_ratios, constant_share
    from mme_plugin.models.backbones import MMEVisionTransformer

    torch.manual_seed(0)
    enc = MMEVisionTransformer(img_size=16, patch_size=8, embed_dims=16,
                               depth=2, num_heads=2, num_frames=4,
                               tubelet_size=2, use_mean_pooling=True)
    enc.init_weights()

    def split(n):
        return [dict(inputs=torch.rand(1, 3, 4, 16, 16) * 255,
                     data_samples=ActionDataSample().set_gt_label(i % 2))
                for i in range(n)]

    from mme_plugin.evaluation import load_clips
    probe = object.__new__(sb.Probe)
    probe.clips = dict(train=load_clips(split(8)), val=load_clips(split(6)))
    probe.velocity = dict(train=torch.randn(8, 4, dtype=torch.float64),
                          val=torch.randn(6, 4, dtype=torch.float64))
    probe.encoder = lambda ckpt, seed: enc
    tokens = []
    h = enc.blocks[-1].register_forward_hook(
        lambda m, i, o: tokens.append(o))
    out = probe(None, 0)
    h.remove()
    val = torch.cat(tokens[-1:])  # the 6 val clips: one batch
    assert val.shape[0] == 6
    assert out['constant_share'] == pytest.approx(constant_share(val))
    assert out['constant_share'] < 0.9
    assert out['sv_ratio'] == pytest.approx(block_sv_ratios(enc.blocks))
    assert {'test_acc', 'relative_spread', 'participation_ratio',
            'motion_r2', 'translation_r2', 'r2_vx'} <= set(out)
    fc2 = enc.blocks[-1].mlp.layers[1]
    with torch.no_grad():
        fc2.weight.zero_()
        fc2.bias.copy_(50 * torch.randn(16))
    assert probe(None, 0)['constant_share'] > 0.9


def test_long_seed_runs_downstream_and_supervised_in_order(sb, tmp_path,
                                                           monkeypatch):
    """--long on one method: pretrain, convert, fine-tune + test, linear +
    test, supervised + test; each test reads the last checkpoint of its
    own work dir and its accuracy comes from the 'Test metrics' part."""
    steps = []

    class FakeRunner(sb.BenchmarkRun):
        def run(self, name, args):
            steps.append((name, args))
            if '--work-dir' in args and args[0] == 'tools/train.py':
                work = tmp_path / args[args.index('--work-dir') + 1]
                work.mkdir(parents=True, exist_ok=True)
                for e in (5, 10):
                    (work / f'epoch_{e}.pth').write_bytes(b'')
            if name.endswith('_test'):
                acc = 0.25 if 'supervised' in name else 0.5
                return (f'acc/top1: 0.99\nTest metrics: acc/top1: {acc} '
                        'acc/top5: 1.0')
            return ''

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sb.BenchmarkRun, 'flow_opts', lambda self, c: [])
    probed = []

    def probe(ck, s):
        probed.append(ck)
        return dict(test_acc=0.1, ckpt=ck)

    probes = _Probes(probe)
    res = sb.run_seed(FakeRunner('w', 'd'), probes,
                      ['mme'], 1, {'mme': {}}, long=True, supervised=True)
    assert [n for n, _ in steps] == [
        'seed1_mme_pretrain', 'seed1_mme_convert', 'seed1_mme_finetune',
        'seed1_mme_finetune_test', 'seed1_mme_linear',
        'seed1_mme_linear_test', 'seed1_supervised', 'seed1_supervised_test']
    args = dict(steps)
    assert args['seed1_mme_convert'][1] == 'w/seed1/mme/pretrain/epoch_10.pth'
    assert 'load_from=w/seed1/mme/backbone.pth' in args['seed1_mme_linear']
    assert '--no-validate' in args['seed1_supervised']
    assert args['seed1_mme_linear_test'][2] == \
        'w/seed1/mme/linear/epoch_10.pth'
    assert res['long']['mme'] == {
        'finetune': {'acc/top1': 0.5, 'acc/top5': 1.0},
        'linear': {'acc/top1': 0.5, 'acc/top5': 1.0}}
    assert res['supervised'] == {'acc/top1': 0.25, 'acc/top5': 1.0}
    # the supervised encoder goes through the same probes (its last
    # checkpoint), after random init and the pretrained encoder
    assert probed == [None, 'w/seed1/mme/pretrain/epoch_10.pth',
                      'w/seed1/supervised/epoch_10.pth']
    assert res['probe']['supervised']['ckpt'] == \
        'w/seed1/supervised/epoch_10.pth'
    assert 'probe_curve' not in res  # seed 1: final checkpoint only
    # the supervised encoder is not fine-tuned on few labels: it saw them all
    assert probes.low_labelled == [None, 'w/seed1/mme/pretrain/epoch_10.pth']


def test_command_line_defaults_follow_long(tool):
    args = tool.parse_args([])
    assert args.work_dir == 'work_dirs/synthetic_benchmark'
    assert args.methods == ['videomae', 'mme']
    args = tool.parse_args(['--long', '--methods', 'mme'])
    assert args.work_dir == 'work_dirs/synthetic_benchmark_long'
    assert args.methods == ['mme', 'videomae', 'mme_absdisp', 'mme_nohog',
                            'mme_L2']
    with pytest.raises(SystemExit, match="KEY=VALUE, got 'x'"):
        tool.parse_args(['--pretrain-options', 'x'])


def test_probe_low_label_fine_tunes_a_fresh_encoder_on_5_per_class(
        sb, monkeypatch):
    """Probe.low_label on a tiny stand-in encoder: 5 clips of each class
    (seeded), scored on every test clip, a fresh encoder each time; a class
    with fewer labelled clips is named."""
    import torch
    from mmaction.structures import ActionDataSample

    from mme_plugin.evaluation import load_clips
    from mme_plugin.models.backbones import MMEVisionTransformer

    built = []

    def encoder(ckpt, seed):
        torch.manual_seed(seed)
        enc = MMEVisionTransformer(img_size=16, patch_size=8, embed_dims=16,
                                   depth=1, num_heads=2, num_frames=4,
                                   tubelet_size=2, use_mean_pooling=True)
        enc.init_weights()
        built.append(enc)
        return enc

    def split(n):
        return [dict(inputs=torch.rand(1, 3, 4, 16, 16) * 255,
                     data_samples=ActionDataSample().set_gt_label(i % 2))
                for i in range(n)]

    import mme_plugin.evaluation as ev
    seen = []
    real = ev.finetune_classifier

    def recorded(enc, xtr, ytr, xte, yte, **kw):
        seen.append((ytr.tolist(), len(xte), enc))
        return real(enc, xtr, ytr, xte, yte, **kw)

    monkeypatch.setattr(ev, 'finetune_classifier', recorded)
    probe = object.__new__(sb.Probe)
    probe.clips = dict(train=load_clips(split(14)), val=load_clips(split(6)))
    probe.num_classes = 2
    probe.encoder = encoder
    first = {k: v.clone() for k, v in encoder(None, 0).state_dict().items()}
    out = probe.low_label(None, 0)
    assert out['per_class'] == sb.LOW_LABEL_PER_CLASS == 5
    # 5 train clips of each class, scored on all 6 test clips
    assert sorted(seen[0][0]) == [0] * 5 + [1] * 5 and seen[0][1] == 6
    # 10 labelled clips in batches of 8: 2 steps per epoch
    assert out['steps'] == 2 * sb.LOW_LABEL_EPOCHS
    # the fine-tuned encoder was the one low_label built (the same seed's
    # init as `first`), and it was trained
    assert len(built) == 2 and seen[0][2] is built[1]
    assert any(not torch.equal(first[k], v)
               for k, v in built[1].state_dict().items())
    probe.clips['train'] = load_clips(split(8))  # 4 per class
    with pytest.raises(ValueError, match='class 0 has 4 labelled clips'):
        probe.low_label(None, 0)
