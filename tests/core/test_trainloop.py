from aics.core.trainloop import RunSpec, refused_changes

SAVED = {"model": {"hidden": 8}, "train": {"epochs": 3, "lr": 0.1}}


def test_a_changed_model_key_is_refused_and_safe_keys_are_not():
    spec = RunSpec("t", {"model": {"hidden": 16}, "train": {"epochs": 9, "lr": 0.1}})
    assert refused_changes(SAVED, spec) == ["model.hidden"]


def test_a_key_added_later_matches_an_old_run_only_at_its_old_behaviour():
    added = {"model.encoder": "cnn"}
    same = RunSpec("t", {"model": {"hidden": 8, "encoder": "cnn"}, "train": SAVED["train"]}, added=added)
    assert refused_changes(SAVED, same) == []
    resnet = {"model": {"hidden": 8, "encoder": "resnet18"}, "train": SAVED["train"]}
    other = RunSpec("t", resnet, added=added)
    assert refused_changes(SAVED, other) == ["model.encoder"]
    # a run recorded with the key is compared as usual
    assert refused_changes(resnet, same) == ["model.encoder"]
    # an unlisted new key is still a change
    assert refused_changes(SAVED, RunSpec("t", same.config)) == ["model.encoder"]
