"""Pairing, validation, the decode cache, augmentation and data preparation."""

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


def test_prepare_writes_a_valid_layout_and_refuses_to_overwrite(tmp_path):
    run = tmp_path / "raw" / "run1"
    run.mkdir(parents=True)
    for frame in ("00001", "00002"):
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(run / f"cam1_{frame}.png")
        people = np.full((16, 16, 3), 255, np.uint8)
        people[2:6, 2:4] = 0
        hero = np.full((16, 16, 3), 255, np.uint8)
        hero[8:12, 8:10] = 0
        Image.fromarray(people).save(run / f"cam2_{frame}.png")
        Image.fromarray(hero).save(run / f"cam3_{frame}.png")
        Image.fromarray(np.full((16, 16, 3), 255, np.uint8)).save(run / f"cam4_{frame}.png")
    out = tmp_path / "out"
    assert prepare(tmp_path / "raw", out, progress=False) == 2
    arrays = load_arrays(out, 16)
    assert arrays.class_pixels.tolist() == [[240, 8, 8], [240, 8, 8]]
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        prepare(tmp_path / "raw", out, progress=False)
