"""Pairing, validation, the decode cache, augmentation and data preparation."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from followme.data import cache as cache_module
from followme.data.augment import AugmentConfig, HeroBank, augment, paste_heroes
from followme.data.cache import load_arrays, load_folders
from followme.data.check import folder_stats
from followme.data.prepare import labels_from_renders, prepare
from followme.data.robond import DataError, find_pairs, pair_key


def test_pair_key_drops_cam1_and_mask():
    assert pair_key("0_run6_cam1_00000_data_pack2") == pair_key("0_run6_mask_00000_data_pack2")
    assert pair_key("10_run4cam1_00000") == pair_key("10_run4_mask_00000")
    assert pair_key("10_run4cam1_00000_prediction") == pair_key("10_run4_mask_00000")
    assert pair_key("10_run4cam1_00001") != pair_key("10_run4_mask_00000")


def test_pairs_go_by_name_not_position(tiny_robond):
    # a mask with no image sorts first and would shift every positional pairing
    mask = tiny_robond / "masks" / "0_run1_mask_00003.png"
    (tiny_robond / "images" / "0_run1cam1_00003.jpeg").unlink()
    pairs, problems = find_pairs(tiny_robond)
    assert len(pairs) == 7
    assert all(pair_key(p.image.stem) == pair_key(p.mask.stem) for p in pairs)
    assert problems == [f"{mask}: mask without an image"]


def test_several_folders_load_as_one_set(tmp_path):
    from conftest import write_robond

    real = write_robond(tmp_path / "real", 5, seed=1)
    sim = write_robond(tmp_path / "sim", 3, seed=2)
    both = load_folders([real, sim], 32, progress=False)
    one, other = load_arrays(real, 32, progress=False), load_arrays(sim, 32, progress=False)
    assert len(both) == 8 and both.names[0] == f"real/{one.names[0]}"
    assert both.names[5] == f"sim/{other.names[0]}"
    np.testing.assert_array_equal(both.images[5:], other.images)
    np.testing.assert_array_equal(both.class_pixels[:5], one.class_pixels)
    assert load_folders(str(real), 32, progress=False).names == one.names


def test_image_without_mask_is_named(tiny_robond):
    (tiny_robond / "masks" / "0_run1_mask_00005.png").unlink()
    with pytest.raises(DataError, match="0_run1cam1_00005.jpeg: image without a mask"):
        load_arrays(tiny_robond, 32)


def test_unreadable_image_is_named_and_skip_bad_skips_it(tiny_robond, caplog):
    bad = tiny_robond / "images" / "0_run1cam1_00002.jpeg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="0_run1cam1_00002.jpeg: unreadable image"):
        load_arrays(tiny_robond, 32)
    arrays = load_arrays(tiny_robond, 32, skip_bad=True)
    assert len(arrays) == 7
    assert "skipped 1 bad file(s)" in caplog.text


def test_mask_not_one_hot_is_named(tiny_robond):
    path = tiny_robond / "masks" / "0_run1_mask_00001.png"
    mask = np.asarray(Image.open(path)).copy()
    mask[0, 0] = (255, 255, 0)
    Image.fromarray(mask).save(path)
    with pytest.raises(DataError, match="0_run1_mask_00001.png: mask is not one-hot"):
        load_arrays(tiny_robond, 32)


def test_size_mismatch_is_named(tiny_robond):
    path = tiny_robond / "images" / "0_run1cam1_00004.jpeg"
    Image.open(path).resize((48, 48)).save(path)
    with pytest.raises(DataError, match="0_run1cam1_00004.jpeg 48x48 and .* sizes differ"):
        load_arrays(tiny_robond, 32)


def test_cache_decodes_once(tiny_robond, monkeypatch):
    first = load_arrays(tiny_robond, 32)
    assert first.images.shape == (8, 32, 32, 3) and first.labels.shape == (8, 32, 32)

    def fail(*a):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache_module, "_decode", fail)
    again = load_arrays(tiny_robond, 32)
    assert isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(first.images, again.images)
    with pytest.raises(AssertionError, match="decoded again"):
        load_arrays(tiny_robond, 16)  # another size is another cache


def test_folder_stats(tiny_robond):
    s = folder_stats(tiny_robond)
    assert s["pairs"] == 8
    assert s["hero_present_share"] == 0.5
    assert sum(s["class_pixel_share"].values()) == pytest.approx(1)


def test_hero_paste_updates_mask_where_it_draws():
    g = torch.Generator().manual_seed(0)
    images = torch.full((4, 3, 64, 64), 100.0)
    labels = torch.zeros(4, 64, 64, dtype=torch.long)
    labels[0, 10:20, 10:20] = 2  # has a hero already: left alone
    rgb = torch.zeros(3, 40, 16)
    rgb[0] = 250
    bank = HeroBank([(rgb, torch.ones(1, 40, 16))])
    out, lab = paste_heroes(images, labels, bank, p=1.0, height=(20, 40), g=g)
    assert torch.equal(lab[0], labels[0]) and torch.equal(out[0], images[0])
    for i in range(1, 4):
        hero = lab[i] == 2
        assert 5 * 2 <= hero.sum() <= 26 * 10  # 8 to 16 px tall at 64 px, and narrow
        assert (out[i, 0][hero] > 200).all()  # the pasted pixels are the hero's
        assert (out[i, 0][~hero] == 100).all()


def test_augment_is_a_function_of_its_seed():
    images = torch.rand(4, 3, 32, 32) * 255
    labels = torch.randint(0, 3, (4, 32, 32))
    cfg = AugmentConfig(shift=1.0, flip=0.5, jitter=0.2)
    a = augment(images, labels, cfg, torch.Generator().manual_seed(5))
    b = augment(images, labels, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # shift-and-pad fills the uncovered border with black background
    black = a[0].sum(1) == 0
    assert black.any() and (a[1][black] == 0).all()


def test_labels_from_renders_is_the_argmin():
    cam2 = np.full((2, 2, 3), 255, np.uint8)
    cam3 = np.full((2, 2, 3), 255, np.uint8)
    cam4 = np.full((2, 2, 3), 255, np.uint8)
    cam2[0, 1, 0] = 0  # a person
    cam3[1, 0, 0] = 0  # the hero
    assert labels_from_renders(cam2, cam3, cam4).tolist() == [[0, 1], [2, 0]]
    # the course's uint8 arithmetic: environment at 0 wraps to 255 and loses to a person at 100
    cam4[1, 1, 0], cam2[1, 1, 0] = 0, 100
    assert labels_from_renders(cam2, cam3, cam4)[1, 1] == 1


def write_quadsim_run(run: Path, frames: int, hero_col: int = 8) -> None:
    """QuadSim's recording of one run: IMG/cam1_N.png and its three label renders."""
    img = run / "IMG"
    img.mkdir(parents=True)
    for n in range(frames):
        frame = f"{n:05d}"
        Image.fromarray(np.full((16, 16, 3), 90 + n, np.uint8)).save(img / f"cam1_{frame}.png")
        people = np.full((16, 16, 3), 255, np.uint8)
        people[2:6, 2:4] = 40
        hero = np.full((16, 16, 3), 255, np.uint8)
        hero[8:12, hero_col:hero_col + 2] = 30
        env = np.full((16, 16, 3), 255, np.uint8)
        env[:, 14:] = 60  # a wall on the right
        for k, render in ((2, people), (3, hero), (4, env)):
            Image.fromarray(render).save(img / f"cam{k}_{frame}.png")


def test_prepare_reads_the_courses_raw_sim_data_layout(tmp_path):
    raw = tmp_path / "raw_sim_data"
    write_quadsim_run(raw / "train" / "run1", 3)
    write_quadsim_run(raw / "train" / "run2", 2, hero_col=4)
    write_quadsim_run(raw / "validation" / "run1", 2)
    (raw / "validation" / "empty_run" / "IMG").mkdir(parents=True)
    out = tmp_path / "processed"
    written = prepare(raw, out, progress=False)
    assert written == {str(out / "train"): 5, str(out / "validation"): 2}
    names = sorted(p.name for p in (out / "train" / "images").iterdir())
    # fold id and run name keep run1 of train and run1 of validation apart
    assert names[0] == "0_run1_cam1_00000.jpeg" and names[-1] == "1_run2_cam1_00001.jpeg"
    assert sorted(p.name for p in (out / "validation" / "masks").iterdir()) == [
        "2_run1_mask_00000.png", "2_run1_mask_00001.png"]
    arrays = load_arrays(out / "train", 16)
    assert arrays.class_pixels.tolist() == [[240, 8, 8]] * 5
    labels = arrays.labels[arrays.names.index(pair_key("1_run2_cam1_00000"))]
    assert (labels[8:12, 4:6] == 2).all() and (labels[2:6, 2:4] == 1).all()
    assert (labels[:, 14:] == 0).all()


def test_prepare_takes_one_run_or_a_folder_of_runs(tmp_path):
    write_quadsim_run(tmp_path / "runs" / "a", 2)
    write_quadsim_run(tmp_path / "runs" / "b", 1)
    assert prepare(tmp_path / "runs", tmp_path / "out", progress=False) == {
        str(tmp_path / "out"): 3}
    assert prepare(tmp_path / "runs" / "b", tmp_path / "one", progress=False) == {
        str(tmp_path / "one"): 1}
    assert (tmp_path / "one" / "images" / "0_b_cam1_00000.jpeg").exists()


def test_prepare_refuses_nothing_found_and_overwrites(tmp_path, capsys):
    from followme.cli import main

    (tmp_path / "raw" / "run1" / "IMG").mkdir(parents=True)
    assert main(["data", "prepare", str(tmp_path / "raw"), str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err
    assert "no cam1_*.png found" in err and str(tmp_path / "raw") in err
    assert "Traceback" not in err
    write_quadsim_run(tmp_path / "raw" / "run2", 2)
    assert main(["data", "prepare", str(tmp_path / "raw"), str(tmp_path / "out")]) == 0
    assert "wrote 2 image/mask pairs" in capsys.readouterr().out
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        prepare(tmp_path / "raw", tmp_path / "out", progress=False)


def test_prepare_names_and_skips_a_corrupt_or_incomplete_frame(tmp_path, caplog):
    write_quadsim_run(tmp_path / "raw" / "run1", 3)
    img = tmp_path / "raw" / "run1" / "IMG"
    (img / "cam3_00001.png").write_bytes(b"not a png")
    (img / "cam4_00002.png").unlink()
    assert prepare(tmp_path / "raw", tmp_path / "out", progress=False) == {
        str(tmp_path / "out"): 1}
    assert "cam3_00001.png" in caplog.text and "missing cam4_00002.png" in caplog.text
