"""DICOM input: window applied, MONOCHROME1 inverted, sharded through the CLI."""

from pathlib import Path

import numpy as np
import pytest

from hpcgan.data.dicom import read_dicom
from tests.conftest import run_cli

pydicom = pytest.importorskip("pydicom")


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2", window=None) -> Path:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


RAMP = np.tile(np.linspace(0, 4000, 64), (48, 1)).astype(np.uint16)


def test_window_is_applied(tmp_path):
    gray = read_dicom(write_dicom(tmp_path / "a.dcm", RAMP, window=(2000, 1000)).read_bytes())
    # Below centre - width/2 = 1500 is black, above 2500 is white.
    assert gray[0, :20].max() == 0 and gray[0, -20:].min() == 255
    assert 0 < gray[0, 32] < 255


def test_monochrome1_is_inverted(tmp_path):
    mono2 = read_dicom(write_dicom(tmp_path / "m2.dcm", RAMP).read_bytes())
    mono1 = read_dicom(write_dicom(tmp_path / "m1.dcm", RAMP, photometric="MONOCHROME1").read_bytes())
    assert np.array_equal(mono1, 255 - mono2)
    assert mono2[0, 0] == 0 and mono1[0, 0] == 255


def test_dicom_folder_shards_with_bad_file_skipped(tmp_path):
    src = tmp_path / "vinbig"
    for i in range(6):
        write_dicom(src / "train" / ("normal" if i % 2 else "nodule") / f"{i}.dicom", RAMP + i * 10)
    (src / "train" / "normal" / "broken.dicom").write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    out = tmp_path / "shards"
    proc = run_cli("shard", src, out, "--size", "64", "--workers", "1")
    assert "6 images" in proc.stderr and "skipped 1" in proc.stderr
    assert "corrupt DICOM" in (out / "skipped.csv").read_text()
