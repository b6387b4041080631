"""Aliases, run against every store: set, move, list, resolve, delete, and going with their
version."""

import pytest

from service.errors import AliasNotFound, InvalidInput, ModelNotFound

from .storekit import save


@pytest.fixture
def three(store, trained):
    """The store with versions 1, 2 and 3 of model 'm'."""
    for _ in range(3):
        save(store, "m", trained)
    return store


def test_an_alias_names_a_version_and_moves(three):
    assert three.aliases("m") == {}
    three.set_alias("m", "prod", 2)
    three.set_alias("m", "best", 3)
    assert three.aliases("m") == {"best": 3, "prod": 2}
    three.set_alias("m", "prod", 1)
    assert three.aliases("m") == {"best": 3, "prod": 1}
    assert three.alias_version("m", "prod") == 1


def test_an_alias_is_seen_by_another_store_on_the_same_data(make_store, trained):
    first, second = make_store(), make_store()
    save(first, "m", trained)
    first.set_alias("m", "best", 1)
    assert second.alias_version("m", "best") == 1


def test_an_alias_to_a_missing_version_is_refused_naming_it(three):
    with pytest.raises(ModelNotFound, match="version 7"):
        three.set_alias("m", "best", 7)
    with pytest.raises(ModelNotFound):
        three.set_alias("nope", "best", 1)
    assert three.aliases("m") == {}


def test_a_missing_alias_is_not_found(three):
    with pytest.raises(AliasNotFound, match="'gone'"):
        three.alias_version("m", "gone")
    with pytest.raises(AliasNotFound):
        three.delete_alias("m", "gone")


def test_delete_alias_leaves_the_version(three):
    three.set_alias("m", "best", 2)
    three.delete_alias("m", "best")
    assert three.aliases("m") == {}
    assert [meta["version"] for meta in three.versions("m")] == [1, 2, 3]


def test_deleting_a_version_removes_its_aliases_only(three):
    three.set_alias("m", "a", 2)
    three.set_alias("m", "b", 2)
    three.set_alias("m", "c", 3)
    three.delete("m", 2)
    assert three.aliases("m") == {"c": 3}


def test_deleting_the_model_removes_every_alias(three, trained):
    three.set_alias("m", "best", 3)
    three.delete("m")
    assert three.aliases("m") == {}
    save(three, "m", trained)  # a new model of the same name starts without aliases
    assert three.aliases("m") == {}


def test_deleting_the_last_version_leaves_no_model(three):
    three.set_alias("m", "best", 1)
    for version in (1, 2, 3):
        three.delete("m", version)
    assert three.aliases("m") == {}
    assert three.list_models() == []


@pytest.mark.parametrize("alias", ["", "UP", ".x", "a/b", "x" * 65, 3])
def test_a_bad_alias_name_is_refused(three, alias):
    with pytest.raises(InvalidInput) as caught:
        three.set_alias("m", alias, 1)
    assert caught.value.extra["errors"][0]["loc"] == ["alias"]
