"""The two halves the real-size recipe runs are split into
(``tests/recipe_driver.py``'s :func:`shards`, run at once by
``tests/test_real_recipes.py``) cover every config once and never read a
checkpoint the other half writes."""
from .recipe_driver import _pretrain_for, all_configs, shards


def test_the_two_halves_cover_every_config_once_and_read_only_their_own():
    halves = shards(all_configs())
    assert sorted(halves[0] + halves[1]) == all_configs()
    assert all(halves)
    for mine, other in (halves, halves[::-1]):
        for c in mine:
            reads = set()
            if '_test' in c:
                reads.add(c.split('_test')[0] + '.py')
            elif 'finetune' in c or 'linear' in c:
                reads.add(_pretrain_for(c))
            assert not reads & set(other), (c, reads)
            # and the pretraining behind a test-only variant's parent
            for r in reads:
                if 'finetune' in r or 'linear' in r:
                    assert _pretrain_for(r) not in other, (c, r)
