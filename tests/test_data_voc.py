"""VOCDataset: reading VOC layout, the 1-based conversion, and every bad input."""
import warnings

import numpy as np
import pytest
from PIL import Image

from minidet.data import VOC_CLASSES, VOCDataset, read_classes
from minidet.errors import DatasetError


def obj(name, box, difficult=0, truncated=0):
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name><truncated>{truncated}</truncated><difficult>{difficult}</difficult>"
            f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>")


def write_item(root, name, objects=(), size=(40, 20), image_mode="RGB", with_size=True, image=True):
    """One image (W, H) = size and its annotation; returns the root."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    w, h = size
    size_xml = f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>" if with_size else ""
    (root / "Annotations" / f"{name}.xml").write_text(f"<annotation>{size_xml}{''.join(objects)}</annotation>")
    if image:
        colour = {"L": 128, "RGB": (10, 20, 30), "RGBA": (10, 20, 30, 0), "CMYK": (0, 0, 0, 0)}.get(image_mode, 1)
        img = Image.new(image_mode, (w, h), colour)
        img.save(root / "JPEGImages" / f"{name}.jpg", format="PNG" if image_mode in ("RGBA", "P") else "JPEG")
    split = root / "ImageSets" / "Main" / "train.txt"
    split.write_text((split.read_text() if split.exists() else "") + name + "\n")
    return root


def test_one_based_pixels_become_normalized_continuous_boxes(tmp_path):
    write_item(tmp_path, "a", [obj("dog", (1, 1, 40, 20)), obj("cat", (11, 6, 30, 15), difficult=1, truncated=1)])
    ds = VOCDataset(tmp_path)
    s = ds[0]
    # xmin=1 → x1=0 and xmax=W → x2=1: the whole image; (11, 6, 30, 15) → (10/40, 5/20, 30/40, 15/20).
    np.testing.assert_allclose(s.boxes, [[0, 0, 1, 1], [0.25, 0.25, 0.75, 0.75]], rtol=0, atol=1e-7)
    assert s.boxes.dtype == np.float32 and s.labels.dtype == np.int64
    assert list(s.labels) == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("cat")]
    assert list(s.difficult) == [False, True] and list(s.truncated) == [False, True]
    assert s.image.shape == (20, 40, 3) and s.image.dtype == np.uint8
    assert s.name == "a" and len(ds) == 1
    boxes, labels, difficult = ds.ground_truths()[0]
    assert boxes is s.boxes and list(difficult) == [False, True]


def test_default_classes_and_classes_txt(tmp_path):
    assert read_classes(tmp_path) == VOC_CLASSES and len(VOC_CLASSES) == 20
    assert VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[-1] == "tvmonitor"
    (tmp_path / "classes.txt").write_text("zebra\n\nyak\n")
    assert read_classes(tmp_path) == ("zebra", "yak")
    write_item(tmp_path, "a", [obj("yak", (1, 1, 4, 4))])
    ds = VOCDataset(tmp_path)
    assert ds.classes == ("zebra", "yak") and list(ds[0].labels) == [1]
    assert VOCDataset(tmp_path, classes=["yak"]).annotations[0].labels.tolist() == [0]


def test_size_falls_back_to_the_image(tmp_path):
    write_item(tmp_path, "a", [obj("dog", (1, 1, 20, 10))], size=(40, 20), with_size=False)
    a = VOCDataset(tmp_path).annotations[0]
    assert (a.width, a.height) == (40, 20)
    np.testing.assert_allclose(a.boxes, [[0, 0, 0.5, 0.5]])


def test_image_without_objects(tmp_path):
    write_item(tmp_path, "empty")
    s = VOCDataset(tmp_path)[0]
    assert s.boxes.shape == (0, 4) and s.labels.shape == (0,) and s.difficult.shape == (0,)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_other_image_modes_become_rgb(tmp_path, mode):
    write_item(tmp_path, "a", image_mode=mode)
    image = VOCDataset(tmp_path)[0].image
    assert image.shape == (20, 40, 3) and image.dtype == np.uint8


def test_boxes_outside_are_clipped_and_counted(tmp_path):
    write_item(tmp_path, "a", [obj("dog", (-9, 1, 60, 10)), obj("cat", (41, 1, 50, 10)), obj("cow", (2, 2, 5, 5))])
    with pytest.warns(UserWarning, match="clipped 2 boxes.*dropped 1"):
        ds = VOCDataset(tmp_path)
    assert ds.clipped_boxes == 2 and ds.dropped_boxes == 1
    a = ds.annotations[0]
    np.testing.assert_allclose(a.boxes[0], [0, 0, 1, 0.5])
    assert a.labels.tolist() == [VOC_CLASSES.index("dog"), VOC_CLASSES.index("cow")]


def test_clean_dataset_does_not_warn(tmp_path):
    write_item(tmp_path, "a", [obj("dog", (1, 1, 40, 20))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VOCDataset(tmp_path)


def test_image_cache_keeps_decoded_images(tmp_path):
    write_item(tmp_path, "a")
    ds = VOCDataset(tmp_path, cache_images=True)
    first = ds[0].image
    (tmp_path / "JPEGImages" / "a.jpg").unlink()
    assert ds[0].image is first


def expect_error(match_path, make):
    with pytest.raises(DatasetError) as info:
        make()
    message = str(info.value)
    assert str(match_path) in message and "\n" not in message
    return message


def test_missing_root(tmp_path):
    expect_error(tmp_path / "nope", lambda: VOCDataset(tmp_path / "nope"))


def test_missing_split_file(tmp_path):
    write_item(tmp_path, "a")
    expect_error(tmp_path / "ImageSets" / "Main" / "val.txt", lambda: VOCDataset(tmp_path, "val"))


def test_missing_annotation(tmp_path):
    write_item(tmp_path, "a")
    (tmp_path / "Annotations" / "a.xml").unlink()
    expect_error(tmp_path / "Annotations" / "a.xml", lambda: VOCDataset(tmp_path))


def test_malformed_xml(tmp_path):
    write_item(tmp_path, "a")
    (tmp_path / "Annotations" / "a.xml").write_text("<annotation><object></annotation>")
    assert "malformed" in expect_error(tmp_path / "Annotations" / "a.xml", lambda: VOCDataset(tmp_path))


def test_truncated_xml(tmp_path):
    write_item(tmp_path, "a", [obj("dog", (1, 1, 4, 4))])
    path = tmp_path / "Annotations" / "a.xml"
    path.write_text(path.read_text()[:60])
    expect_error(path, lambda: VOCDataset(tmp_path))


def test_bad_coordinate(tmp_path):
    write_item(tmp_path, "a", [obj("dog", (1, "x", 4, 4))])
    assert "ymin" in expect_error(tmp_path / "Annotations" / "a.xml", lambda: VOCDataset(tmp_path))


def test_unknown_class(tmp_path):
    write_item(tmp_path, "a", [obj("unicorn", (1, 1, 4, 4))])
    assert "unicorn" in expect_error(tmp_path / "Annotations" / "a.xml", lambda: VOCDataset(tmp_path))


def test_missing_image(tmp_path):
    write_item(tmp_path, "a", image=False)
    expect_error(tmp_path / "JPEGImages" / "a.jpg", lambda: VOCDataset(tmp_path))


def test_undecodable_image(tmp_path):
    write_item(tmp_path, "a")
    path = tmp_path / "JPEGImages" / "a.jpg"
    path.write_bytes(b"not a jpeg at all")
    ds = VOCDataset(tmp_path)  # the size came from the XML: decoding waits for access
    assert "decode" in expect_error(path, lambda: ds[0])


def test_truncated_image(tmp_path):
    write_item(tmp_path, "a", size=(64, 64))
    path = tmp_path / "JPEGImages" / "a.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    expect_error(path, lambda: VOCDataset(tmp_path)[0])


def test_image_size_disagreeing_with_annotation(tmp_path):
    write_item(tmp_path, "a", size=(40, 20))
    Image.new("RGB", (20, 20)).save(tmp_path / "JPEGImages" / "a.jpg")
    expect_error(tmp_path / "JPEGImages" / "a.jpg", lambda: VOCDataset(tmp_path)[0])


# --- inputs read as users mean them (issue 10) ---------------------------------------------


def test_byte_order_mark_in_split_file_and_classes_txt(tmp_path):
    """Some editors start a UTF-8 file with a byte-order mark; it is not part of the first name."""
    write_item(tmp_path, "000001", [obj("red_circle", (1, 1, 4, 4))])
    (tmp_path / "classes.txt").write_bytes("\ufeffred_circle\nblue_square\n".encode("utf-8"))
    split = tmp_path / "ImageSets" / "Main" / "train.txt"
    split.write_bytes("\ufeff000001\n".encode("utf-8"))
    assert read_classes(tmp_path) == ("red_circle", "blue_square")
    ds = VOCDataset(tmp_path)
    assert ds.names == ["000001"] and ds[0].labels.tolist() == [0]


def _rotated_photo(root, name, orientation, suffix=".jpg"):
    """A 40×20 picture as shown (red block at pixels x 5..14, y 2..7), stored turned a quarter
    with the EXIF orientation that shows it upright; returns the picture as shown (H, W, 3)."""
    shown = np.full((20, 40, 3), 40, np.uint8)
    shown[2:8, 5:15] = (255, 0, 0)
    # Orientation 6 is shown turned 90° clockwise, 8 turned 90° counter-clockwise.
    stored = Image.fromarray(shown).transpose(Image.ROTATE_90 if orientation == 6 else Image.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(root / "JPEGImages" / f"{name}{suffix}", format="PNG", exif=exif)
    assert stored.size == (20, 40)
    return shown


@pytest.mark.parametrize("orientation", [6, 8])
@pytest.mark.parametrize("with_size", [True, False])
def test_exif_orientation_is_applied(tmp_path, orientation, with_size):
    """Boxes are drawn on the picture as viewers show it: the decoded image is that picture,
    and the size read from the header (no <size> in the XML) is the shown one."""
    from minidet.data import decode_image

    write_item(tmp_path, "a", [obj("dog", (6, 3, 15, 8))], size=(40, 20), with_size=with_size, image=False)
    shown = _rotated_photo(tmp_path, "a", orientation)
    sample = VOCDataset(tmp_path)[0]
    assert sample.image.shape == (20, 40, 3)
    assert np.array_equal(sample.image, shown)
    np.testing.assert_allclose(sample.boxes, [[5 / 40, 2 / 20, 15 / 40, 8 / 20]], rtol=1e-6)
    red = np.argwhere((sample.image == (255, 0, 0)).all(-1))
    assert red.min(0).tolist() == [2, 5] and red.max(0).tolist() == [7, 14]
    assert np.array_equal(decode_image(tmp_path / "JPEGImages" / "a.jpg"), shown)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_box_coordinates_are_refused(tmp_path, value):
    write_item(tmp_path, "a", [obj("dog", (1, 1, 4, 4)), obj("cat", (1, 1, value, 4))])
    message = expect_error(tmp_path / "Annotations" / "a.xml", lambda: VOCDataset(tmp_path))
    assert "object 2" in message and "'cat'" in message and "non-finite" in message


@pytest.mark.parametrize("suffix", [".jpeg", ".png", ".JPG", ".PNG"])
def test_images_under_other_usual_extensions_are_found(tmp_path, suffix):
    write_item(tmp_path, "a", [obj("dog", (1, 1, 4, 4))], image=False)
    Image.new("RGB", (40, 20), (1, 2, 3)).save(tmp_path / "JPEGImages" / f"a{suffix}",
                                               format="PNG" if "png" in suffix.lower() else "JPEG")
    ds = VOCDataset(tmp_path)
    assert ds.image_path(0) == tmp_path / "JPEGImages" / f"a{suffix}"
    assert ds[0].image.shape == (20, 40, 3)


def test_missing_image_says_which_extensions_were_tried(tmp_path):
    write_item(tmp_path, "a", image=False)
    message = expect_error(tmp_path / "JPEGImages" / "a.jpg", lambda: VOCDataset(tmp_path))
    assert "tried a.jpg, a.jpeg, a.png, a.JPG" in message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_refused_naming_the_file(tmp_path, monkeypatch):
    write_item(tmp_path, "a", size=(40, 20))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # 800 pixels: over it (Pillow only warns)
    ds = VOCDataset(tmp_path)
    assert "decompression" in expect_error(tmp_path / "JPEGImages" / "a.jpg", lambda: ds[0])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # over twice: Pillow raises its own error
    assert "refused" in expect_error(tmp_path / "JPEGImages" / "a.jpg", lambda: ds[0])
    write_item(tmp_path / "nosize", "b", size=(40, 20), with_size=False)
    expect_error(tmp_path / "nosize" / "JPEGImages" / "b.jpg", lambda: VOCDataset(tmp_path / "nosize"))
