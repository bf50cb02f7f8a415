"""The sample user and data a fresh server starts with.

On first start in an empty data dir: user ``scientist`` (random password), project 1 "Sample Project"
and a small tree in their My Data (``/project/1/user/scientist``)::

    README.txt                      tag: sample
    molecules/aspirin.smi
    molecules/caffeine.sdf
    results/run1/scores.csv         tags: Job 1, sample
    ligands                         dataset (4 SMILES records), tag: sample, systemtag: 3D
    trajectories                    shard collection (ready): frame-0.bin, frame-1.bin, frame-2.bin

and ``team-notes.txt`` in Team Data (``/project/1/team``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from orionfs.server.storage import Storage, User

logger = logging.getLogger(__name__)

SAMPLE_USERNAME = "scientist"
SAMPLE_PROJECT_NAME = "Sample Project"

README = b"""Welcome to the orionfs local Orion.

This is the sample user's My Data. Browse it with `orionfs ls`, or mount it with `orionfs mount`.
"""
ASPIRIN = b"CC(=O)OC1=CC=CC=C1C(=O)O aspirin\n"
CAFFEINE = b"""caffeine
  orionfs sample

  3  2  0  0  0  0  0  0  0  0999 V2000
    1.0000    0.0000    0.0000 N   0  0  0  0  0  0  0  0  0  0  0  0
    2.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    3.0000    0.0000    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  2  3  2  0
M  END
$$$$
"""
SCORES = b"molecule,score\naspirin,0.71\ncaffeine,0.42\nibuprofen,0.88\n"
LIGANDS = (
    b"CCO ethanol\nc1ccccc1 benzene\nCC(=O)O acetic_acid\nCN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine\n"
)
TEAM_NOTES = b"Notes shared by every member of the Sample Project.\n"


@dataclass(frozen=True)
class SampleUser:
    """The sample user's credentials (``password`` only known on the first start)."""

    username: str
    password: str | None
    project: int


def _put(storage: Storage, user: User, kind: str, folder: str, name: str, data: bytes) -> dict:
    upload = storage.new_upload(count_lines=kind == "dataset")
    upload.write(data)
    return storage.commit_upload(user, upload, kind, name, folder)


def create_sample(storage: Storage) -> SampleUser:
    """Create the sample user, project and tree; call only on an empty data dir."""
    password = secrets.token_urlsafe(12)
    user, project = storage.create_user(
        SAMPLE_USERNAME, password, project=None, project_name=SAMPLE_PROJECT_NAME
    )
    my = f"/project/{project}/user/{SAMPLE_USERNAME}"
    team = f"/project/{project}/team"
    storage.create_paths(user, [f"{my}/molecules", f"{my}/results/run1"])
    readme = _put(storage, user, "file", my, "README.txt", README)
    storage.add_tags(user, "file", readme["id"], ["sample"])
    _put(storage, user, "file", f"{my}/molecules", "aspirin.smi", ASPIRIN)
    _put(storage, user, "file", f"{my}/molecules", "caffeine.sdf", CAFFEINE)
    scores = _put(storage, user, "file", f"{my}/results/run1", "scores.csv", SCORES)
    storage.add_tags(user, "file", scores["id"], ["Job 1", "sample"])
    ligands = _put(storage, user, "dataset", my, "ligands", LIGANDS)
    storage.add_tags(user, "dataset", ligands["id"], ["sample"])
    storage.add_tags(user, "dataset", ligands["id"], ["3D"], system=True)
    collection = storage.create_collection(user, "trajectories", my, {"frames": 3})
    for index in range(3):
        upload = storage.new_upload()
        upload.write(f"frame {index}\n".encode() * (index + 1))
        storage.commit_shard(user, collection["id"], upload, f"frame-{index}.bin", {"frame": index})
    storage.update_resource(user, "shard_collection", collection["id"], {"state": "ready"})
    _put(storage, user, "file", team, "team-notes.txt", TEAM_NOTES)
    return SampleUser(SAMPLE_USERNAME, password, project)
