"""Ingest atomic structures with energies and forces into one canonical, validated list.

Sources are files that ``ase.io`` reads (extxyz, VASP OUTCAR or vasprun.xml, ...) and
n2p2 ``input.data`` files. Every frame is checked (energy, forces, finite numbers,
known elements, cell, overlapping atoms) and gets a stable id
``<file stem>:<frame index>:<12 hex digits of a SHA-1 of its content>``, so that a
selection, an error or an outlier can be traced back to its source file and frame.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read as ase_read
from ase.io import write as ase_write
from ase.io.formats import string2index

from equipipe.errors import InputError
from equipipe.fileio import atomic_path
from equipipe.materials.descriptors import neighbour_list
from equipipe.materials.n2p2 import read_n2p2

logger = logging.getLogger(__name__)

ON_INVALID = ("error", "skip")
MIN_DISTANCE = 0.5
"""Smallest allowed interatomic distance in Å: shorter than any chemical bond (H2: 0.74 Å),
so a closer pair means duplicated or corrupted coordinates."""
HASH_DECIMALS = 6
"""Decimals kept when hashing numbers, so that ids do not depend on the last bits of a parse."""
TABLE_COLUMNS = ["id", "source", "frame", "n_atoms", "composition", "energy_per_atom", "config_type"]


@dataclass
class SourceSpec:
    """One input file and how to read its energies and forces.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    format : str, optional
        ``ase.io`` format name, or ``"n2p2"``. By default ASE guesses from the file
        name and content, and a file named ``input.data`` is read as n2p2.
    energy_key : str, default "energy"
        Key of the total energy (eV) in ``atoms.info``; the calculator's energy is
        used when the key is absent.
    forces_key : str, default "forces"
        Key of the forces (eV/Å) in ``atoms.arrays``; the calculator's forces are used
        when the key is absent.
    config_type : str, optional
        Group label for frames whose file does not set ``config_type``; by default the
        file stem.
    index : str, default ":"
        Frames to read, in ``ase.io.read`` syntax (``":"``, ``"0:100"``, ``"-1"``);
        frame numbers in ids stay those of the file.
    """

    path: str | os.PathLike
    format: str | None = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    config_type: str | None = None
    index: str = ":"


class _InvalidFrame(Exception):
    """A frame failed a check; ``reason`` is the short name counted in skip mode."""

    def __init__(self, reason: str, message: str, field: str, fix: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field
        self.fix = fix


def read_sources(
    sources: Sequence[SourceSpec],
    elements: Sequence[str],
    on_invalid: str = "error",
) -> list[Atoms]:
    """Read, validate and label every frame of every source.

    Parameters
    ----------
    sources : sequence of SourceSpec
        Files to read, in order.
    elements : sequence of str
        Chemical symbols allowed in the data.
    on_invalid : {"error", "skip"}, default "error"
        On an invalid frame, raise (``"error"``) or drop it, count it and log a
        WARNING with the count per reason (``"skip"``). An unreadable file raises in
        both modes.

    Returns
    -------
    list of ase.Atoms
        Valid frames in source order. Each has ``atoms.calc`` a SinglePointCalculator
        with ``energy`` (eV) and ``forces`` (eV/Å, shape (n_atoms, 3)), and
        ``atoms.info`` with ``id``, ``source`` (the path as given), ``frame`` (index in
        the file) and ``config_type``. Other info and arrays are dropped.

    Raises
    ------
    InputError
        If a file cannot be read. With ``on_invalid="error"`` also for a frame with
        no energy or forces, non-finite numbers, forces of the wrong shape, no atoms,
        an element not in ``elements``, a periodic direction without a cell vector, or
        two atoms closer than 0.5 Å. The message names the file, the frame, the field
        and the fix.
    ValueError
        If ``on_invalid`` or ``elements`` is invalid.
    """
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid={on_invalid!r} is invalid; expected one of {ON_INVALID}")
    if not elements:
        raise ValueError("elements is empty; list the chemical symbols of the data, e.g. ['Pd', 'H']")
    allowed = set(elements)

    structures: list[Atoms] = []
    for spec in sources:
        frames, frame_numbers = _read_file(spec)
        skipped: Counter[str] = Counter()
        first_message: dict[str, str] = {}
        for frame_number, raw in zip(frame_numbers, frames):
            try:
                structures.append(_canonical_frame(spec, frame_number, raw, allowed))
            except _InvalidFrame as invalid:
                if on_invalid == "error":
                    raise InputError(
                        invalid.message, path=spec.path, location=f"frame {frame_number}",
                        field=invalid.field, fix=invalid.fix,
                    ) from None
                skipped[invalid.reason] += 1
                first_message.setdefault(invalid.reason, f"frame {frame_number}: {invalid.message}")
        if skipped:
            counts = ", ".join(f"{reason}={count}" for reason, count in sorted(skipped.items()))
            examples = "; ".join(first_message[reason] for reason in sorted(skipped))
            logger.warning(
                "%s: skipped %d of %d frames (%s). First of each: %s. Fix the frames or remove them to silence this",
                spec.path, sum(skipped.values()), len(frames), counts, examples,
            )
        logger.info("%s: read %d valid frames", spec.path, len(frames) - sum(skipped.values()))
    if not structures:
        raise InputError(
            f"no valid frames in {len(sources)} file(s): every frame was invalid or skipped "
            "(the log lists the reasons)",
            path=", ".join(os.fspath(spec.path) for spec in sources),
            fix="check the files, energy_key, forces_key and the elements list in the config",
        )
    _check_duplicates(structures)
    return structures


def _check_duplicates(structures: Sequence[Atoms]) -> None:
    """Reject repeated ids (a file listed twice) and warn about repeated content."""
    seen: dict[str, Atoms] = {}
    for atoms in structures:
        first = seen.setdefault(atoms.info["id"], atoms)
        if first is not atoms:
            raise InputError(
                f"structure id {atoms.info['id']!r} occurs twice (source {first.info['source']!r}, "
                f"frame {first.info['frame']}, and source {atoms.info['source']!r}, frame {atoms.info['frame']})",
                path=atoms.info["source"], location=f"frame {atoms.info['frame']}", field="files",
                fix="list each file once, and give files with the same name different names",
            )
    by_hash: dict[str, list[str]] = {}
    for atoms in structures:
        by_hash.setdefault(atoms.info["id"].rsplit(":", 1)[-1], []).append(atoms.info["id"])
    repeated = [ids for ids in by_hash.values() if len(ids) > 1]
    if repeated:
        logger.warning(
            "%d groups of structures have identical content (first: %s); identical frames can "
            "end up in both the training and the test set, so remove the copies",
            len(repeated), ", ".join(repeated[0]),
        )


def _read_file(spec: SourceSpec) -> tuple[list[Atoms], list[int]]:
    """Read the frames that ``spec.index`` selects and their frame numbers in the file."""
    path = Path(spec.path)
    if not path.is_file():
        raise InputError("file not found", path=spec.path, field="path",
                         fix="check the path in the list of sources")
    try:
        selection = string2index(spec.index)
    except ValueError as error:
        raise InputError(f"invalid frame selection index={spec.index!r}", path=spec.path, field="index",
                         fix="use ase.io.read syntax such as ':', '0:100' or '-1'") from error

    is_n2p2 = spec.format == "n2p2" or (spec.format is None and path.name == "input.data")
    try:
        if is_n2p2:
            frames = read_n2p2(path)
        else:
            frames = ase_read(path, index=":", format=spec.format)
    except InputError:
        raise
    except Exception as error:  # ASE's readers raise many types for malformed files.
        raise InputError(
            f"invalid file content: ase.io could not read it "
            f"(format={spec.format or 'guessed from the file name'}): {type(error).__name__}: {error}",
            path=spec.path,
            fix="check the file for truncated or garbled frames (a count line that does not "
            "match the atom lines, text in a number column); if the format was guessed "
            "wrongly, set format to an ase.io format name or 'n2p2'",
        ) from None
    if isinstance(frames, Atoms):
        frames = [frames]

    frame_numbers = list(range(len(frames)))
    if isinstance(selection, int):
        if not -len(frames) <= selection < len(frames):
            raise InputError(f"index={spec.index!r} selects no frame of the {len(frames)} in the file",
                             path=spec.path, field="index", fix=f"use an index below {len(frames)}")
        frame_numbers = [frame_numbers[selection]]
    else:
        frame_numbers = frame_numbers[selection]
    return [frames[k] for k in frame_numbers], frame_numbers


def _canonical_frame(spec: SourceSpec, frame_number: int, raw: Atoms, allowed: set[str]) -> Atoms:
    """Validate one frame and return a clean copy with calculator results and info labels."""
    n_atoms = len(raw)
    if n_atoms == 0:
        raise _InvalidFrame("empty", "frame has no atoms", "positions", "remove the empty frame")

    unknown = sorted(set(raw.get_chemical_symbols()) - allowed)
    if unknown:
        raise _InvalidFrame(
            "unknown_element", f"frame contains elements {unknown} that are not in the element list {sorted(allowed)}",
            "elements", f"add {unknown} to the list of elements or remove the frame",
        )

    energy = _energy(raw, spec.energy_key)
    forces = _forces(raw, spec.forces_key, n_atoms)
    positions = raw.get_positions()
    if not np.all(np.isfinite(positions)):
        raise _InvalidFrame("non_finite", "positions contain NaN or infinite values", "positions",
                            "fix or remove the frame")
    cell = np.asarray(raw.get_cell(complete=False))
    if not np.all(np.isfinite(cell)):
        raise _InvalidFrame("non_finite", "cell contains NaN or infinite values", "cell", "fix or remove the frame")
    _check_cell_and_distances(raw)

    atoms = Atoms(numbers=raw.get_atomic_numbers(), positions=positions, cell=raw.get_cell(), pbc=raw.get_pbc())
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    atoms.info["id"] = structure_id(Path(spec.path).stem, frame_number, atoms, energy)
    atoms.info["source"] = os.fspath(spec.path)
    atoms.info["frame"] = int(frame_number)
    file_config_type = raw.info.get("config_type")
    if file_config_type is not None:
        atoms.info["config_type"] = _label(file_config_type)
    elif spec.config_type is not None:
        atoms.info["config_type"] = str(spec.config_type)
    else:
        atoms.info["config_type"] = Path(spec.path).stem
    return atoms


def _label(value) -> str:
    # extxyz parses the bare values T and F as booleans; give them back as written.
    # NOTE: a numeric-looking label such as "1.50" also comes back parsed, as "1.5".
    if isinstance(value, (bool, np.bool_)):
        return "T" if value else "F"
    return str(value)


def _energy(raw: Atoms, key: str) -> float:
    if key in raw.info:
        value, origin = raw.info[key], f"info[{key!r}]"
    elif raw.calc is not None and "energy" in raw.calc.results:
        value, origin = raw.calc.results["energy"], "the calculator results"
    else:
        raise _InvalidFrame(
            "missing_energy", f"frame has no energy (no {key!r} in the frame's info and no calculator energy)",
            key, "add the total energy in eV to the frame, or set energy_key to the key the file uses",
        )
    try:
        energy = float(np.asarray(value, dtype=float).reshape(()))
    except (TypeError, ValueError):
        raise _InvalidFrame("invalid_energy", f"energy in {origin} is not one number: {value!r}", key,
                            "store the total energy as a single number in eV") from None
    if not np.isfinite(energy):
        raise _InvalidFrame("non_finite", f"energy in {origin} is {energy}", key, "fix or remove the frame")
    return energy


def _forces(raw: Atoms, key: str, n_atoms: int) -> np.ndarray:
    if key in raw.arrays:
        value, origin = raw.arrays[key], f"arrays[{key!r}]"
    elif raw.calc is not None and "forces" in raw.calc.results:
        value, origin = raw.calc.results["forces"], "the calculator results"
    else:
        raise _InvalidFrame(
            "missing_forces", f"frame has no forces (no per-atom {key!r} array and no calculator forces)",
            key, "add forces in eV/Å to the frame, or set forces_key to the per-atom key the file uses (e.g. 'force')",
        )
    try:
        forces = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise _InvalidFrame("invalid_forces", f"forces in {origin} are not numbers", key,
                            "store forces as an (n_atoms, 3) array of numbers in eV/Å") from None
    if forces.shape != (n_atoms, 3):
        raise _InvalidFrame("force_shape", f"forces in {origin} have shape {forces.shape}, expected ({n_atoms}, 3)",
                            key, "store one force vector (3 components) per atom")
    if not np.all(np.isfinite(forces)):
        raise _InvalidFrame("non_finite", f"forces in {origin} contain NaN or infinite values", key,
                            "fix or remove the frame")
    return forces


def _check_cell_and_distances(raw: Atoms) -> None:
    pbc = raw.get_pbc()
    lengths = raw.cell.lengths()
    flat = [axis for axis in range(3) if pbc[axis] and lengths[axis] == 0]
    if flat:
        raise _InvalidFrame("invalid_cell", f"frame is periodic along axes {flat} but has no cell vector there",
                            "cell", "give the full cell (e.g. Lattice= in extxyz) or set pbc to False on those axes")
    if pbc.all() and raw.cell.rank < 3:
        raise _InvalidFrame("invalid_cell", "frame is periodic but its cell vectors are linearly dependent",
                            "cell", "give three independent cell vectors")
    if len(raw) > 1 or pbc.any():
        first, second, distances = neighbour_list("ijd", raw, MIN_DISTANCE)
        if len(distances):
            k = int(np.argmin(distances))
            raise _InvalidFrame(
                "overlapping_atoms",
                f"atoms {first[k]} and {second[k]} are {distances[k]:.3f} Å apart, closer than {MIN_DISTANCE} Å",
                "positions", "remove duplicated atoms or fix the coordinates",
            )


def structure_id(stem: str, frame_number: int, atoms: Atoms, energy: float) -> str:
    """Return ``<stem>:<frame>:<12 hex digits>`` hashing numbers, cell, positions and energy.

    Numbers are rounded to 6 decimals (Å, eV) before hashing, and ``-0.0`` is
    normalised to ``0.0``, so that the same content read twice gives the same id.
    """
    digest = hashlib.sha1()
    digest.update(np.ascontiguousarray(atoms.get_atomic_numbers(), dtype=np.int64).tobytes())
    for array in (np.asarray(atoms.get_cell()), atoms.get_positions(), np.array([energy])):
        rounded = np.round(np.asarray(array, dtype=np.float64), HASH_DECIMALS) + 0.0
        digest.update(np.ascontiguousarray(rounded).tobytes())
    digest.update(np.asarray(atoms.get_pbc(), dtype=np.uint8).tobytes())
    return f"{stem}:{frame_number}:{digest.hexdigest()[:12]}"


def write_canonical(atoms_list: Sequence[Atoms], path: str | os.PathLike) -> None:
    """Write structures as extxyz with their ids, labels, energy and forces, atomically.

    ASE writes positions, cell and forces with 8 decimals (Å, eV/Å) and the energy
    in full precision. Writing the structures that :func:`read_canonical` returns
    reproduces the file byte for byte.
    """
    images = []
    for index, atoms in enumerate(atoms_list):
        missing = [key for key in ("id", "source", "frame", "config_type") if key not in atoms.info]
        if missing or atoms.calc is None:
            raise ValueError(
                f"structure {index} lacks info {missing} or a calculator; pass structures from read_sources"
            )
        image = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        image.info = {key: atoms.info[key] for key in ("id", "source", "frame", "config_type")}
        image.calc = SinglePointCalculator(
            image, energy=atoms.calc.results["energy"], forces=atoms.calc.results["forces"]
        )
        images.append(image)
    with atomic_path(path) as temp:
        ase_write(temp, images, format="extxyz")


def read_canonical(path: str | os.PathLike) -> list[Atoms]:
    """Read a file written by :func:`write_canonical`.

    Raises
    ------
    InputError
        If the file cannot be read or a frame lacks an id, label, energy or forces.
    """
    try:
        frames = ase_read(path, index=":", format="extxyz")
    except Exception as error:  # ASE's extxyz reader raises many types for malformed files.
        raise InputError(f"failed to read canonical extxyz: {type(error).__name__}: {error}", path=path,
                         fix="regenerate the file with write_canonical") from error
    for frame_number, atoms in enumerate(frames):
        missing = [key for key in ("id", "source", "frame", "config_type") if key not in atoms.info]
        results = atoms.calc.results if atoms.calc is not None else {}
        missing += [key for key in ("energy", "forces") if key not in results]
        if missing:
            raise InputError(f"frame lacks {missing}", path=path, location=f"frame {frame_number}",
                             field=missing[0], fix="regenerate the file with write_canonical")
        for key in ("id", "source", "config_type"):
            atoms.info[key] = _label(atoms.info[key])
        atoms.info["frame"] = int(atoms.info["frame"])
    return frames


def structure_table(atoms_list: Sequence[Atoms]) -> pd.DataFrame:
    """Return one row per structure.

    Columns: ``id``, ``source``, ``frame``, ``n_atoms``, ``composition`` (ASE's Hill
    formula, e.g. ``"H4Pd32"``), ``energy_per_atom`` (eV/atom) and ``config_type``.
    """
    rows = [
        {
            "id": atoms.info["id"],
            "source": atoms.info["source"],
            "frame": int(atoms.info["frame"]),
            "n_atoms": len(atoms),
            "composition": atoms.get_chemical_formula(),
            "energy_per_atom": float(atoms.calc.results["energy"]) / len(atoms),
            "config_type": atoms.info["config_type"],
        }
        for atoms in atoms_list
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
