"""`rasa train --data nlu` must read the training YAML under nlu/ and nothing else kept there."""

from __future__ import annotations

import shutil
from pathlib import Path

import rasa.shared.data
from rasa.shared.importers.importer import TrainingDataImporter

NLU_DIR = Path(__file__).resolve().parents[2] / "nlu"
DOMAIN = NLU_DIR.parent / "domain.yml"


def nlu_fingerprint(data_dir: Path) -> str:
    """Fingerprint of the NLU training data Rasa loads from `data_dir`."""
    importer = TrainingDataImporter.load_from_dict(domain_path=str(DOMAIN), training_data_paths=[str(data_dir)])
    return importer.get_nlu_data().fingerprint()


def test_only_yaml_files_are_read_as_training_data() -> None:
    read = {Path(p).name for p in rasa.shared.data.get_data_files([str(NLU_DIR)], lambda _: True)}
    assert read, "no training data under nlu/"
    assert all(name.endswith((".yml", ".yaml")) for name in read), read
    assert not read & {"entity_patterns.jsonl", "spacy_pipeline.py", "__init__.py"}


def test_code_and_entity_patterns_do_not_change_the_training_data(tmp_path: Path) -> None:
    everything = tmp_path / "everything"
    shutil.copytree(NLU_DIR, everything)
    # Byte-code appears next to the package wherever Python may write it.
    (everything / "__pycache__").mkdir(exist_ok=True)
    (everything / "__pycache__" / "spacy_pipeline.cpython-310.pyc").write_bytes(b"\x00" * 16)
    yaml_only = tmp_path / "yaml_only"
    shutil.copytree(NLU_DIR, yaml_only, ignore=lambda _, names: [n for n in names if not n.endswith(".yml")])
    assert nlu_fingerprint(everything) == nlu_fingerprint(yaml_only)
