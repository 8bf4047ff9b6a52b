"""Reading our case layout: <split>/cases.csv, <split>/images/<id>.npy, <split>/masks/<id>.npy."""
import collections
import pathlib

import numpy as np
import pandas as pd

CaseTable = collections.namedtuple("CaseTable", ["ids", "grades", "sites", "folder"])


def read_case_table(folder):
    folder = pathlib.Path(folder)
    df = pd.read_csv(folder / "cases.csv", dtype={"case_id": np.int64, "grade": np.int64, "site": str})
    return CaseTable(ids=df["case_id"].to_numpy(), grades=df["grade"].to_numpy(),
                     sites=df["site"].to_numpy(), folder=folder)


def read_case(folder, case_id):
    """(image uint8 (H, W), mask uint8 (H, W)) of one case."""
    folder = pathlib.Path(folder)
    image = np.load(folder / "images" / f"{case_id}.npy")
    mask = np.load(folder / "masks" / f"{case_id}.npy")
    return image, mask
