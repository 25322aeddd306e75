import json

import pytest
import torch

from genlab import checkpoint as ck
from genlab.errors import GenlabError


def _state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"w": torch.randn(4, 3, generator=g), "b": torch.zeros(3)}


def test_round_trip_with_train_state(tmp_path):
    opt_state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}}, "param_groups": [{"lr": 0.1}]}
    train_state = {"step": 7, "optimizers": {"main": opt_state}, "rng": {"torch": torch.get_rng_state()},
                   "pair": (1, "a")}
    path = ck.save_checkpoint(tmp_path / "c", kind="toy", config={"a": 1}, model=_state(), ema=_state(1),
                              train_state=train_state, meta={"note": "x"})
    loaded = ck.load_checkpoint(path, kind="toy", with_train_state=True)
    assert loaded.config == {"a": 1} and loaded.meta["note"] == "x"
    assert torch.equal(loaded.model["w"], _state()["w"]) and torch.equal(loaded.ema["w"], _state(1)["w"])
    ts = loaded.train_state
    assert ts["step"] == 7 and ts["pair"] == (1, "a")
    assert list(ts["optimizers"]["main"]["state"].keys()) == [0]  # int keys survive JSON
    assert torch.equal(ts["rng"]["torch"], train_state["rng"]["torch"])
    assert loaded.meta["weights_hash"] == ck.weights_hash(_state())


def test_wrong_kind_missing_and_corrupt_are_one_line_errors(tmp_path):
    path = ck.save_checkpoint(tmp_path / "c", kind="toy", config={}, model=_state())
    with pytest.raises(GenlabError, match="holds a 'toy' model, expected 'diffusion'"):
        ck.load_checkpoint(path, kind="diffusion")
    with pytest.raises(GenlabError, match="checkpoint not found"):
        ck.load_checkpoint(tmp_path / "nope")
    (path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(GenlabError, match="not a readable safetensors file"):
        ck.load_checkpoint(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(GenlabError, match="corrupt JSON"):
        ck.load_checkpoint(path)


def test_crash_during_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = ck.save_checkpoint(tmp_path / "c", kind="toy", config={"v": 1}, model=_state(0))

    def exploding_save(tensors, filename, *a, **k):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(ck, "save_file", exploding_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(path, kind="toy", config={"v": 2}, model=_state(1))
    monkeypatch.undo()
    loaded = ck.load_checkpoint(path)
    assert loaded.config == {"v": 1} and torch.equal(loaded.model["w"], _state(0)["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no temporary directory left behind


def test_load_weights_strict_refuses_mismatch(tmp_path):
    module = torch.nn.Linear(3, 4)
    with pytest.raises(GenlabError, match="x: weights do not match the config: 1 missing \\(e.g. bias\\)"):
        ck.load_weights_strict(module, {"weight": torch.zeros(4, 3)}, "x")
    with pytest.raises(GenlabError, match="1 shape mismatches \\(e.g. weight: \\(5, 3\\) vs \\(4, 3\\)\\)"):
        ck.load_weights_strict(module, {"weight": torch.zeros(5, 3), "bias": torch.zeros(4)}, "x")


def test_latest_pointer(tmp_path):
    ck.save_checkpoint(tmp_path / "checkpoints" / "step_1", kind="toy", config={}, model=_state())
    ck.write_latest(tmp_path / "checkpoints", "step_1")
    assert ck.resolve_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_1"
    assert json.loads((tmp_path / "checkpoints" / "step_1" / "config.json").read_text())["kind"] == "toy"


def test_sparse_rows_store_only_nonzero_rows_and_restore_exactly(tmp_path):
    emb = torch.zeros(1000, 8)
    emb[[3, 17, 999]] = torch.randn(3, 8)
    model = {"emb": emb, "other": torch.randn(4, 4)}
    ema = {"emb": emb * 0.5, "other": torch.randn(4, 4)}
    path = ck.save_checkpoint(tmp_path / "c", kind="t", config={}, model=model, ema=ema, sparse_rows=("emb",))
    dense = ck.save_checkpoint(tmp_path / "d", kind="t", config={}, model=model)
    assert (path / ck.MODEL_FILE).stat().st_size < (dense / ck.MODEL_FILE).stat().st_size // 10
    loaded = ck.load_checkpoint(path, kind="t")
    assert torch.equal(loaded.model["emb"], emb) and torch.equal(loaded.model["other"], model["other"])
    assert torch.equal(loaded.ema["emb"], ema["emb"]) and set(loaded.model) == set(model)
    assert json.loads((path / ck.CONFIG_FILE).read_text())["sparse_rows"] == {"emb": [1000, 8]}
    # A config whose shape does not fit the stored rows is refused in one line.
    cfg = json.loads((path / ck.CONFIG_FILE).read_text())
    cfg["sparse_rows"]["emb"] = [10, 8]
    (path / ck.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(GenlabError, match="does not fit"):
        ck.load_checkpoint(path)


def test_meta_copied_from_another_checkpoint_cannot_override_the_weights_hash(tmp_path):
    path = ck.save_checkpoint(tmp_path / "c", kind="t", config={}, model=_state(),
                              meta={"weights_hash": "0000000000000000", "step": 7})
    meta = ck.load_checkpoint(path).meta
    assert meta["weights_hash"] == ck.weights_hash(_state()) and meta["step"] == 7


# ---------------------------------------------------------------------------------------------------------------
# Components: frozen parts named, not copied; verified on load.


def test_component_round_trips_and_is_loaded_not_copied(tmp_path):
    vae = ck.save_checkpoint(tmp_path / "vae", kind="toy-vae", config={"z": 4}, model=_state(3))
    safetensors_part = tmp_path / "text.safetensors"
    from safetensors.torch import save_file

    save_file(_state(4), str(safetensors_part))
    path = ck.save_checkpoint(tmp_path / "c", kind="toy", config={}, model=_state(),
                              components={"vae": {"ref": str(vae), "hash": ck.weights_hash(_state(3))},
                                          "text": {"ref": str(safetensors_part)}})  # hash computed when missing
    stored = json.loads((path / ck.CONFIG_FILE).read_text())["components"]
    assert stored == {"vae": {"ref": str(vae), "hash": ck.weights_hash(_state(3))},
                      "text": {"ref": str(safetensors_part), "hash": ck.weights_hash(_state(4))}}
    from safetensors.torch import load_file

    assert set(load_file(str(path / ck.MODEL_FILE))) == set(_state())  # only the checkpoint's own weights
    loaded = ck.load_checkpoint(path)
    assert loaded.components["vae"].kind == "toy-vae" and loaded.components["vae"].config == {"z": 4}
    assert torch.equal(loaded.components["vae"].model["w"], _state(3)["w"])
    assert torch.equal(loaded.components["text"].model["w"], _state(4)["w"])
    assert loaded.component_refs == stored


def test_tampered_component_is_refused_in_one_line(tmp_path):
    vae = ck.save_checkpoint(tmp_path / "vae", kind="toy-vae", config={}, model=_state(3))
    path = ck.save_checkpoint(tmp_path / "c", kind="toy", config={}, model=_state(),
                              components={"vae": {"ref": str(vae)}})
    ck.save_checkpoint(tmp_path / "vae", kind="toy-vae", config={}, model=_state(5))  # retrained since
    with pytest.raises(GenlabError) as info:
        ck.load_checkpoint(path)
    message = str(info.value)
    assert "component 'vae'" in message and ck.weights_hash(_state(3)) in message and "\n" not in message
    assert ck.load_checkpoint(path, with_components=False).component_refs["vae"]["ref"] == str(vae)
    import shutil

    shutil.rmtree(tmp_path / "vae")
    with pytest.raises(GenlabError, match="model not found"):
        ck.load_checkpoint(path)


def test_component_by_bundled_name_and_relative_path(tmp_path, monkeypatch):
    from genlab.models import REGISTRY, resolve_model

    bundled = ck.load_checkpoint(resolve_model("emoji32-ddpm"), kind="diffusion")
    ref_hash = ck.weights_hash(bundled.model)
    assert ref_hash == bundled.meta["weights_hash"]  # a component's hash is its own meta's weights hash
    path = ck.save_checkpoint(tmp_path / "run" / "c", kind="toy", config={}, model=_state(),
                              components={"unet": {"ref": "emoji32-ddpm", "hash": ref_hash}})
    assert torch.equal(ck.load_checkpoint(path).components["unet"].model["conv_in.weight"],
                       bundled.model["conv_in.weight"])
    # A relative path is looked up beside the checkpoint first.
    ck.save_checkpoint(path / "part", kind="toy-part", config={}, model=_state(7))
    other = ck.save_checkpoint(tmp_path / "d", kind="toy", config={}, model=_state(),
                               components={"part": {"ref": "part", "hash": ck.weights_hash(_state(7))}})
    (other / "part").symlink_to(path / "part")
    monkeypatch.chdir(tmp_path)
    assert ck.load_checkpoint(other).components["part"].kind == "toy-part"
    assert "emoji32-ddpm" in REGISTRY and "speech-asr" in REGISTRY


def test_resolve_model_names_paths_and_unknown_names(tmp_path):
    from genlab.models import ASSETS, REGISTRY, resolve_model

    assert resolve_model("emoji32-ddpm") == ASSETS / "emoji32-ddpm"
    assert resolve_model("speech-asr") == ASSETS / "speech-asr"
    assert resolve_model(str(tmp_path)) == tmp_path
    with pytest.raises(GenlabError) as info:
        resolve_model("emoji64-ddpm")
    assert all(name in str(info.value) for name in REGISTRY) and "\n" not in str(info.value)
    for name, entry in REGISTRY.items():
        if entry.asset and not entry.install.startswith("train it:"):  # every shipped asset is in this install
            assert resolve_model(name).exists(), name
        elif entry.asset and entry.locate() is None:  # one not trained yet says how to make it, in one line
            with pytest.raises(GenlabError, match="not installed on this machine: train it: python recipes/"):
                resolve_model(name)
