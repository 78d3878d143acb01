"""Tests of structure ingestion, the n2p2 format, the test split and the PdH generator."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from conftest import shared_data_path

from equipipe.errors import InputError
from equipipe.materials.ingest import (
    SourceSpec,
    read_canonical,
    read_sources,
    structure_table,
    write_canonical,
)
from equipipe.materials.n2p2 import read_n2p2, write_n2p2
from equipipe.materials.pdh import generate_pdh_dataset
from equipipe.materials.split import split_train_test


def pdh_frame(seed: int, n_hydrogen: int = 4) -> Atoms:
    """Return a 2x2x2 conventional Pd cell (32 Pd) with H on octahedral sites and fake labels."""
    lattice_constant = 3.95
    atoms = bulk("Pd", "fcc", a=lattice_constant, cubic=True).repeat((2, 2, 2))
    sites = np.array([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]])[:n_hydrogen]
    atoms += Atoms(f"H{n_hydrogen}", positions=sites * lattice_constant)
    atoms.rattle(0.05, seed=seed)
    rng = np.random.default_rng(seed)
    atoms.calc = SinglePointCalculator(atoms, energy=-150.0 + rng.normal(), forces=rng.normal(size=(len(atoms), 3)))
    return atoms


def write_frames(path, frames) -> str:
    write(path, frames, format="extxyz")
    return str(path)


@pytest.fixture
def good_file(tmp_path) -> str:
    return write_frames(tmp_path / "pdh.xyz", [pdh_frame(k) for k in range(3)])


def test_read_sources_labels_frames(good_file):
    frames = read_sources([SourceSpec(good_file)], ["Pd", "H"])
    assert len(frames) == 3
    for k, atoms in enumerate(frames):
        assert atoms.info["source"] == good_file
        assert atoms.info["frame"] == k
        assert atoms.info["config_type"] == "pdh"
        assert atoms.info["id"].startswith(f"pdh:{k}:")
        assert len(atoms.info["id"].split(":")[2]) == 12
        assert isinstance(atoms.calc, SinglePointCalculator)
        assert atoms.calc.results["forces"].shape == (36, 3)
    assert frames[1].get_potential_energy() == pytest.approx(pdh_frame(1).get_potential_energy(), abs=1e-8)


def test_ids_stable_across_reads(good_file):
    first = [a.info["id"] for a in read_sources([SourceSpec(good_file)], ["Pd", "H"])]
    second = [a.info["id"] for a in read_sources([SourceSpec(good_file)], ["Pd", "H"])]
    assert first == second
    assert len(set(first)) == 3


def test_id_changes_with_content(tmp_path):
    frame = pdh_frame(0)
    moved = pdh_frame(0)
    moved.positions[3, 0] += 0.01
    original = read_sources([SourceSpec(write_frames(tmp_path / "a.xyz", [frame]))], ["Pd", "H"])
    changed = read_sources([SourceSpec(write_frames(tmp_path / "a.xyz", [moved]))], ["Pd", "H"])
    assert original[0].info["id"] != changed[0].info["id"]


def test_config_type_precedence(tmp_path):
    labelled = pdh_frame(0)
    labelled.info["config_type"] = "bulk_hot"
    path = write_frames(tmp_path / "mixed.xyz", [labelled, pdh_frame(1)])
    default = read_sources([SourceSpec(path)], ["Pd", "H"])
    assert [a.info["config_type"] for a in default] == ["bulk_hot", "mixed"]
    given = read_sources([SourceSpec(path, config_type="md")], ["Pd", "H"])
    assert [a.info["config_type"] for a in given] == ["bulk_hot", "md"]


def test_custom_keys(tmp_path):
    frame = pdh_frame(0)
    energy, forces = frame.get_potential_energy(), frame.get_forces()
    plain = Atoms(frame.numbers, positions=frame.positions, cell=frame.cell, pbc=True)
    plain.info["dft_energy"] = energy
    plain.arrays["dft_force"] = forces
    path = write_frames(tmp_path / "custom.xyz", [plain])
    atoms = read_sources([SourceSpec(path, energy_key="dft_energy", forces_key="dft_force")], ["Pd", "H"])[0]
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-8)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-8)


def test_index_keeps_file_frame_numbers(tmp_path):
    path = write_frames(tmp_path / "five.xyz", [pdh_frame(k) for k in range(5)])
    frames = read_sources([SourceSpec(path, index="1:5:2")], ["Pd", "H"])
    assert [a.info["frame"] for a in frames] == [1, 3]
    last = read_sources([SourceSpec(path, index="-1")], ["Pd", "H"])
    assert [a.info["frame"] for a in last] == [4]


def without_energy(atoms: Atoms) -> Atoms:
    copy = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    copy.arrays["forces"] = atoms.get_forces()
    return copy


def without_forces(atoms: Atoms) -> Atoms:
    copy = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    copy.info["energy"] = atoms.get_potential_energy()
    return copy


def with_nan_energy(atoms: Atoms) -> Atoms:
    atoms.calc.results["energy"] = float("nan")
    return atoms


def with_nan_force(atoms: Atoms) -> Atoms:
    atoms.calc.results["forces"][2, 1] = float("inf")
    return atoms


def with_unknown_element(atoms: Atoms) -> Atoms:
    atoms.numbers[0] = 28  # Ni
    return atoms


def with_overlapping_atoms(atoms: Atoms) -> Atoms:
    atoms.positions[1] = atoms.positions[0] + [0.2, 0.0, 0.0]
    return atoms


BAD_FRAMES = [
    (without_energy, "missing_energy", "frame 1: frame has no energy .*field 'energy'.*Fix: add the total energy"),
    (without_forces, "missing_forces", "frame 1: frame has no forces .*field 'forces'.*Fix: add forces"),
    (with_nan_energy, "non_finite", "frame 1: energy in the calculator results is nan .*field 'energy'"),
    (with_nan_force, "non_finite", "frame 1: forces in the calculator results contain NaN or infinite"),
    (with_unknown_element, "unknown_element", "frame 1: frame contains elements \\['Ni'\\].*Fix: add \\['Ni'\\]"),
    (with_overlapping_atoms, "overlapping_atoms", "frame 1: atoms 0 and 1 are 0.200 Å apart"),
]


@pytest.mark.parametrize(("make_bad", "reason", "message"), BAD_FRAMES, ids=[case[1] + "-" + case[0].__name__
                                                                            for case in BAD_FRAMES])
def test_bad_frame_raises(tmp_path, make_bad, reason, message):
    path = write_frames(tmp_path / "bad.xyz", [pdh_frame(0), make_bad(pdh_frame(1)), pdh_frame(2)])
    with pytest.raises(InputError, match=message) as error:
        read_sources([SourceSpec(path)], ["Pd", "H"])
    assert str(error.value).startswith(path)


@pytest.mark.parametrize(("make_bad", "reason", "message"), BAD_FRAMES, ids=[case[1] + "-" + case[0].__name__
                                                                            for case in BAD_FRAMES])
def test_bad_frame_skipped(tmp_path, caplog, make_bad, reason, message):
    path = write_frames(tmp_path / "bad.xyz", [pdh_frame(0), make_bad(pdh_frame(1)), pdh_frame(2)])
    with caplog.at_level(logging.WARNING, logger="equipipe.materials.ingest"):
        frames = read_sources([SourceSpec(path)], ["Pd", "H"], on_invalid="skip")
    assert [a.info["frame"] for a in frames] == [0, 2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"skipped 1 of 3 frames ({reason}=1)" in warnings[0]


def test_wrong_force_shape_raises(tmp_path):
    frame = without_forces(pdh_frame(0))
    frame.arrays["short_force"] = np.zeros((len(frame), 2))
    path = write_frames(tmp_path / "shape.xyz", [frame])
    with pytest.raises(InputError, match="frame 0: forces in arrays\\['short_force'\\] have shape \\(36, 2\\), "
                                         "expected \\(36, 3\\)"):
        read_sources([SourceSpec(path, forces_key="short_force")], ["Pd", "H"])


def test_skip_counts_every_reason(tmp_path, caplog):
    frames = [pdh_frame(0), without_energy(pdh_frame(1)), without_energy(pdh_frame(2)),
              with_nan_force(pdh_frame(3)), pdh_frame(4)]
    path = write_frames(tmp_path / "mixed.xyz", frames)
    with caplog.at_level(logging.WARNING, logger="equipipe.materials.ingest"):
        kept = read_sources([SourceSpec(path)], ["Pd", "H"], on_invalid="skip")
    assert [a.info["frame"] for a in kept] == [0, 4]
    assert "skipped 3 of 5 frames (missing_energy=2, non_finite=1)" in caplog.text


def test_empty_frame_raises(tmp_path):
    path = tmp_path / "empty.xyz"
    path.write_text('0\nLattice="4 0 0 0 4 0 0 0 4" Properties=species:S:1:pos:R:3 energy=1.0 pbc="T T T"\n')
    with pytest.raises(InputError, match="frame 0: frame has no atoms"):
        read_sources([SourceSpec(path)], ["Pd", "H"])


def test_periodic_without_cell_raises(tmp_path):
    frame = pdh_frame(0)
    flat = Atoms(frame.numbers, positions=frame.positions, pbc=True)
    flat.calc = SinglePointCalculator(flat, energy=1.0, forces=np.zeros((len(flat), 3)))
    with pytest.raises(InputError, match="periodic along axes \\[0, 1, 2\\] but has no cell vector"):
        read_sources([SourceSpec(write_frames(tmp_path / "flat.xyz", [flat]))], ["Pd", "H"])


def test_missing_file_raises(tmp_path):
    with pytest.raises(InputError, match="missing.xyz: file not found"):
        read_sources([SourceSpec(tmp_path / "missing.xyz")], ["Pd", "H"])


def test_unreadable_file_raises(tmp_path):
    path = tmp_path / "garbage.xyz"
    path.write_text("3\nnot an extxyz header\nPd 0 0\n")
    with pytest.raises(InputError, match="garbage.xyz: invalid file content: ase.io could not read it"):
        read_sources([SourceSpec(path, format="extxyz")], ["Pd", "H"])


def test_invalid_arguments_rejected(good_file):
    with pytest.raises(ValueError, match="on_invalid='ignore' is invalid"):
        read_sources([SourceSpec(good_file)], ["Pd", "H"], on_invalid="ignore")
    with pytest.raises(InputError, match="invalid frame selection index='a:b'"):
        read_sources([SourceSpec(good_file, index="a:b")], ["Pd", "H"])
    with pytest.raises(InputError, match="index='7' selects no frame of the 3"):
        read_sources([SourceSpec(good_file, index="7")], ["Pd", "H"])


def test_canonical_round_trip(tmp_path, good_file):
    frames = read_sources([SourceSpec(good_file)], ["Pd", "H"])
    canonical = tmp_path / "canonical.xyz"
    write_canonical(frames, canonical)
    again = read_canonical(canonical)
    assert [a.info for a in again] == [a.info for a in frames]
    for original, copy in zip(frames, again):
        assert copy.get_chemical_symbols() == original.get_chemical_symbols()
        np.testing.assert_allclose(copy.positions, original.positions, atol=1e-8)
        np.testing.assert_allclose(copy.get_forces(), original.get_forces(), atol=1e-8)
        assert copy.get_potential_energy() == original.get_potential_energy()
    rewritten = tmp_path / "rewritten.xyz"
    write_canonical(again, rewritten)
    assert rewritten.read_bytes() == canonical.read_bytes()


def test_chinese_paths_and_labels_round_trip(tmp_path):
    folder = tmp_path / "数据 集"
    folder.mkdir()
    frame = pdh_frame(0)
    frame.info["config_type"] = "体相 样本"
    path = write_frames(folder / "钯氢.xyz", [frame])
    frames = read_sources([SourceSpec(path)], ["Pd", "H"])
    assert frames[0].info["id"].startswith("钯氢:0:")
    assert frames[0].info["config_type"] == "体相 样本"
    write_canonical(frames, folder / "规范.xyz")
    assert read_canonical(folder / "规范.xyz")[0].info == frames[0].info


def test_canonical_keeps_boolean_looking_labels(tmp_path, good_file):
    frames = read_sources([SourceSpec(good_file, config_type="T")], ["Pd", "H"])
    write_canonical(frames, tmp_path / "labels.xyz")
    assert [a.info["config_type"] for a in read_canonical(tmp_path / "labels.xyz")] == ["T"] * 3


def test_read_canonical_rejects_unlabelled(tmp_path, good_file):
    with pytest.raises(InputError, match="frame 0: frame lacks \\['id', 'source', 'frame', 'config_type'\\]"):
        read_canonical(good_file)


def test_structure_table_columns(good_file):
    frames = read_sources([SourceSpec(good_file)], ["Pd", "H"])
    table = structure_table(frames)
    assert list(table.columns) == ["id", "source", "frame", "n_atoms", "composition", "energy_per_atom", "config_type"]
    assert table["composition"].tolist() == ["H4Pd32"] * 3
    assert table["n_atoms"].tolist() == [36] * 3
    assert table["energy_per_atom"].iloc[0] == pytest.approx(frames[0].get_potential_energy() / 36)


N2P2_TEXT = """begin
comment periodic PdH test frame
lattice 4.0 0.0 0.0
lattice 0.0 4.0 0.0
lattice 0.0 0.0 4.0
atom 0.0 0.0 0.0 Pd 0.1 0.0 0.01 -0.02 0.03
atom 2.0 0.0 0.0 H -0.1 0.0 -0.01 0.02 -0.03
energy -12.5
charge 0.0
end
begin
comment molecule
atom 0.0 0.0 0.0 H 0.0 0.0 0.5 0.0 0.0
atom 0.74 0.0 0.0 H 0.0 0.0 -0.5 0.0 0.0
energy -31.0
charge 0.0
end
"""


def test_n2p2_reads_values(tmp_path):
    path = tmp_path / "input.data"
    path.write_text(N2P2_TEXT)
    periodic, molecule = read_n2p2(path)
    assert periodic.get_chemical_symbols() == ["Pd", "H"]
    assert periodic.pbc.all()
    np.testing.assert_array_equal(periodic.cell.array, 4.0 * np.eye(3))
    assert periodic.get_potential_energy() == -12.5
    np.testing.assert_array_equal(periodic.get_forces()[1], [-0.01, 0.02, -0.03])
    np.testing.assert_array_equal(periodic.get_initial_charges(), [0.1, -0.1])
    assert periodic.info["comment"] == "periodic PdH test frame"
    assert not molecule.pbc.any()
    assert molecule.get_potential_energy() == -31.0


def test_n2p2_round_trip(tmp_path):
    frames = [pdh_frame(0), pdh_frame(1, n_hydrogen=2)]
    frames[0].info["comment"] = "first"
    path = tmp_path / "round.data"
    write_n2p2(path, frames)
    again = read_n2p2(path)
    for original, copy in zip(frames, again):
        assert copy.get_chemical_symbols() == original.get_chemical_symbols()
        np.testing.assert_array_equal(copy.positions, original.positions)
        np.testing.assert_array_equal(copy.cell.array, original.cell.array)
        np.testing.assert_array_equal(copy.get_forces(), original.get_forces())
        assert copy.get_potential_energy() == original.get_potential_energy()
    assert again[0].info["comment"] == "first"


def test_n2p2_detected_by_file_name(tmp_path):
    path = tmp_path / "input.data"
    path.write_text(N2P2_TEXT)
    frames = read_sources([SourceSpec(path)], ["Pd", "H"])
    assert [a.info["id"].split(":")[0] for a in frames] == ["input", "input"]
    assert frames[0].get_potential_energy() == -12.5
    explicit = tmp_path / "pdh.n2p2"
    explicit.write_text(N2P2_TEXT)
    assert len(read_sources([SourceSpec(explicit, format="n2p2")], ["Pd", "H"])) == 2


def test_n2p2_missing_energy_reported_by_ingest(tmp_path):
    path = tmp_path / "input.data"
    path.write_text(N2P2_TEXT.replace("energy -31.0\n", ""))
    with pytest.raises(InputError, match="input.data, frame 1: frame has no energy"):
        read_sources([SourceSpec(path)], ["Pd", "H"])


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("energy -12.5", "energy -12.5 eV", "line 8: 'energy' line has 2 values, expected 1"),
        ("energy -12.5", "energy abc", "line 8: 'energy' line contains a value that is not a number"),
        ("atom 2.0 0.0 0.0 H -0.1 0.0 -0.01 0.02 -0.03", "atom 2.0 0.0 0.0 H -0.1 0.0 -0.01 0.02",
         "line 7: 'atom' line has 8 values, expected 9"),
        ("atom 2.0 0.0 0.0 H", "atom 2.0 0.0 0.0 Qq", "line 7: 'atom' line has unknown element 'Qq'"),
        ("atom 2.0 0.0 0.0 H -0.1", "atom 2.0 x 0.0 H -0.1", "line 7: 'atom' line contains a value that is not"),
        ("lattice 0.0 0.0 4.0\n", "", "line 9: block from line 1 has 2 'lattice' lines, expected 3"),
        ("charge 0.0\nend\nbegin", "charge 0.0\nbegin", "line 10: 'begin' before the 'end' of the block opened at line 1"),
        ("comment molecule", "coment molecule", "line 12: unknown keyword 'coment'"),
    ],
    ids=["energy-extra-field", "energy-not-number", "atom-short", "atom-element", "atom-not-number",
         "two-lattice-lines", "missing-end", "unknown-keyword"],
)
def test_n2p2_malformed_line(tmp_path, old, new, message):
    path = tmp_path / "input.data"
    assert old in N2P2_TEXT
    path.write_text(N2P2_TEXT.replace(old, new, 1))
    with pytest.raises(InputError, match=message):
        read_n2p2(path)


def test_n2p2_unterminated_and_stray_lines(tmp_path):
    path = tmp_path / "input.data"
    path.write_text(N2P2_TEXT.rsplit("end", 1)[0])
    with pytest.raises(InputError, match="line 11: block has no 'end' line"):
        read_n2p2(path)
    path.write_text("energy 1.0\n" + N2P2_TEXT)
    with pytest.raises(InputError, match="line 1: 'energy' outside a begin ... end block"):
        read_n2p2(path)


@pytest.mark.shared_data
def test_fe_gap22_ingest():
    folder = shared_data_path("materials", "fe-gap22")
    frames = read_sources([SourceSpec(folder / "DB10.xyz", forces_key="force", index="0:20")], ["Fe"])
    assert len(frames) == 20
    assert frames[0].info["config_type"] == "hcp"
    assert frames[0].get_forces().shape == (2, 3)
    assert frames[0].get_potential_energy() < 0
    with pytest.raises(InputError, match="DB10.xyz, frame 0: frame has no forces .*set forces_key"):
        read_sources([SourceSpec(folder / "DB10.xyz", index="0:2")], ["Fe"])


def split_table() -> pd.DataFrame:
    labels = ["bulk"] * 40 + ["surface"] * 20 + ["vacancy"] * 9 + ["single"]
    return pd.DataFrame({"id": [f"s{k}" for k in range(len(labels))], "config_type": labels})


def test_split_stratified_disjoint_complete():
    table = split_table()
    train, test = split_train_test(table, 0.2, seed=1)
    assert set(train).isdisjoint(test)
    assert sorted(train + test) == sorted(table["id"])
    assert len(test) == 14
    labels = table.set_index("id")["config_type"]
    counts = labels[test].value_counts().to_dict()
    assert counts == {"bulk": 8, "surface": 4, "vacancy": 2}
    assert "s69" in train  # a stratum of one structure stays in training


def test_split_seeded():
    table = split_table()
    assert split_train_test(table, 0.2, seed=3) == split_train_test(table, 0.2, seed=3)
    assert split_train_test(table, 0.2, seed=3)[1] != split_train_test(table, 0.2, seed=4)[1]


def test_split_without_strata():
    table = pd.DataFrame({"id": [f"s{k}" for k in range(10)]})
    train, test = split_train_test(table, 0.3, seed=0)
    assert len(test) == 3
    assert len(train) == 7


def test_split_invalid_arguments():
    table = split_table()
    with pytest.raises(ValueError, match="test_fraction=1.5 must be a number in \\(0, 1\\)"):
        split_train_test(table, 1.5, seed=0)
    with pytest.raises(ValueError, match="table has 1 rows"):
        split_train_test(table.iloc[:1], 0.2, seed=0)
    with pytest.raises(ValueError, match="duplicate ids \\['s0'\\]"):
        split_train_test(pd.concat([table, table.iloc[:1]]), 0.2, seed=0)
    with pytest.raises(ValueError, match="no 'id' column"):
        split_train_test(table.rename(columns={"id": "name"}), 0.2, seed=0)
    singles = pd.DataFrame({"id": ["a", "b"], "config_type": ["x", "y"]})
    with pytest.raises(ValueError, match="every one of the 2 strata has a single structure"):
        split_train_test(singles, 0.5, seed=0)


def test_pdh_generator_reproducible(tmp_path):
    options = {"temperatures": (600.0,), "hydrogen_contents": (0.5,)}
    first = generate_pdh_dataset(2, seed=5, **options)
    second = generate_pdh_dataset(2, seed=5, **options)
    other = generate_pdh_dataset(1, seed=6, groups=("bulk",), **options)
    assert len(first) == 8
    assert [a.info["id"] for a in first] == [a.info["id"] for a in second]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.positions, b.positions)
        assert a.get_potential_energy() == b.get_potential_energy()
    assert other[0].info["id"] != first[0].info["id"]

    assert [a.info["config_type"] for a in first] == ["bulk"] * 2 + ["strained"] * 2 + ["vacancy"] * 2 + ["surface"] * 2
    for atoms in first:
        assert np.all(np.isfinite(atoms.get_forces()))
        assert atoms.get_forces().shape == (len(atoms), 3)
        assert set(atoms.get_chemical_symbols()) == {"Pd", "H"}
    assert first[4].get_chemical_symbols().count("Pd") == 31
    assert first[6].pbc.tolist() == [True, True, False]

    # The frames pass every ingest check (finite values, no overlapping atoms).
    path = tmp_path / "pdh.xyz"
    write(path, first, format="extxyz")
    again = read_sources([SourceSpec(path)], ["Pd", "H"])
    assert [a.info["config_type"] for a in again] == [a.info["config_type"] for a in first]


def test_pdh_invalid_arguments():
    with pytest.raises(ValueError, match="n_frames_per_group=0 must be an integer >= 1"):
        generate_pdh_dataset(0, seed=0)
    with pytest.raises(ValueError, match="groups=\\['liquid'\\] must be distinct values"):
        generate_pdh_dataset(1, seed=0, groups=("liquid",))
    with pytest.raises(ValueError, match="hydrogen_contents=\\[1.5\\]"):
        generate_pdh_dataset(1, seed=0, hydrogen_contents=(1.5,))


def test_skip_mode_rejects_all_invalid(tmp_path):
    path = write_frames(tmp_path / "all_bad.xyz", [without_energy(pdh_frame(seed)) for seed in range(3)])
    with pytest.raises(InputError, match=r"no valid frames in 1 file.*Fix: check the files"):
        read_sources([SourceSpec(path)], elements=["Pd", "H"], on_invalid="skip")


def test_file_listed_twice_rejected(good_file):
    with pytest.raises(InputError, match=r"occurs twice.*Fix: list each file once"):
        read_sources([SourceSpec(good_file), SourceSpec(good_file)], elements=["Pd", "H"])


def test_identical_content_logged(tmp_path, caplog):
    first = write_frames(tmp_path / "a.xyz", [pdh_frame(0)])
    second = write_frames(tmp_path / "b.xyz", [pdh_frame(0)])
    with caplog.at_level(logging.WARNING):
        structures = read_sources([SourceSpec(first), SourceSpec(second)], elements=["Pd", "H"])
    assert len(structures) == 2
    assert "identical content" in caplog.text


def test_garbled_file_names_content_not_format(tmp_path):
    path = tmp_path / "garbled.xyz"
    path.write_text("2\nenergy=-1.0 pbc=\"F F F\"\nFe 0 0 abc\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"garbled\.xyz: invalid file content") as caught:
        read_sources([SourceSpec(str(path))], elements=["Fe"])
    assert caught.value.__cause__ is None
