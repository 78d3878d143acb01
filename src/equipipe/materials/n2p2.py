"""Reader and writer for n2p2 ``input.data`` files.

One structure is a block of keyword lines::

    begin
    comment <free text>
    lattice <ax> <ay> <az>          (three lines for a periodic cell, none otherwise)
    atom <x> <y> <z> <element> <charge> <n> <fx> <fy> <fz>
    energy <E>
    charge <Q>
    end

n2p2 converts no units: the numbers are in whatever units the file was written in
(often Bohr and Hartree, or Å and eV). This module keeps them as written and neither
guesses nor converts units, so a caller who mixes an input.data file with
eV/Å data must convert it first. The ``n`` column (unused by n2p2) is ignored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers as ASE_ATOMIC_NUMBERS

from equipipe.errors import InputError
from equipipe.fileio import atomic_path

logger = logging.getLogger(__name__)

KEYWORDS = ("begin", "comment", "lattice", "atom", "energy", "charge", "end")


class _Frame:
    """Lines of one structure collected between ``begin`` and ``end``."""

    def __init__(self, line_number: int) -> None:
        self.begin_line = line_number
        self.comment = ""
        self.lattice: list[list[float]] = []
        self.positions: list[list[float]] = []
        self.symbols: list[str] = []
        self.charges: list[float] = []
        self.forces: list[list[float]] = []
        self.energy: float | None = None
        self.total_charge: float | None = None


def read_n2p2(path: str | os.PathLike) -> list[Atoms]:
    """Read every structure of an n2p2 ``input.data`` file.

    Parameters
    ----------
    path : str or os.PathLike
        File to read.

    Returns
    -------
    list of ase.Atoms
        One per ``begin ... end`` block, in file order. A block with three ``lattice``
        lines is periodic in all directions, a block without is not. Energy and forces
        are stored in ``atoms.calc`` (a SinglePointCalculator); a block without an
        ``energy`` line has no energy result, so the caller can report it. Atomic
        charges become initial charges, ``comment`` and ``charge`` go into
        ``atoms.info["comment"]`` and ``atoms.info["charge"]``.

    Raises
    ------
    InputError
        If the file cannot be read, or for a malformed line, with its line number.
        Malformed lines are unknown keywords, wrong numbers of fields, values that are
        not numbers, unknown elements, keywords outside a block, a block without
        ``end``, and blocks with other than 0 or 3 lattice lines.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(
            f"failed to read the n2p2 file: {error}",
            path=path,
            fix="check that the path exists and is a readable UTF-8 text file",
        ) from error

    frames: list[Atoms] = []
    frame: _Frame | None = None
    for line_number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        keyword = fields[0].lower()
        if keyword not in KEYWORDS:
            _fail(path, line_number, f"unknown keyword {fields[0]!r}", keyword, f"use one of {', '.join(KEYWORDS)}")
        if keyword == "begin":
            if frame is not None:
                _fail(path, line_number, f"'begin' before the 'end' of the block opened at line {frame.begin_line}",
                      keyword, "close every block with an 'end' line")
            frame = _Frame(line_number)
            continue
        if frame is None:
            _fail(path, line_number, f"{keyword!r} outside a begin ... end block", keyword,
                  "start every structure with a 'begin' line")
        if keyword == "comment":
            frame.comment = line.strip()[len(fields[0]):].strip()
        elif keyword == "lattice":
            frame.lattice.append(_numbers(path, line_number, fields, 3, keyword))
        elif keyword == "atom":
            _parse_atom(path, line_number, fields, frame)
        elif keyword == "energy":
            frame.energy = _numbers(path, line_number, fields, 1, keyword)[0]
        elif keyword == "charge":
            frame.total_charge = _numbers(path, line_number, fields, 1, keyword)[0]
        elif keyword == "end":
            frames.append(_to_atoms(path, line_number, frame))
            frame = None
    if frame is not None:
        _fail(path, frame.begin_line, "block has no 'end' line", "end", "close every block with an 'end' line")
    return frames


def _fail(path, line_number: int, message: str, field: str, fix: str) -> None:
    raise InputError(message, path=path, location=f"line {line_number}", field=field, fix=fix)


def _numbers(path, line_number: int, fields: list[str], count: int, keyword: str) -> list[float]:
    """Parse ``count`` numbers after the keyword, rejecting extra or missing fields."""
    if len(fields) != count + 1:
        _fail(path, line_number, f"{keyword!r} line has {len(fields) - 1} values, expected {count}",
              keyword, f"write '{keyword}' followed by {count} number(s)")
    try:
        return [float(value) for value in fields[1:]]
    except ValueError:
        _fail(path, line_number, f"{keyword!r} line contains a value that is not a number: {' '.join(fields[1:])!r}",
              keyword, "write plain decimal numbers")
    raise AssertionError("unreachable")


def _parse_atom(path, line_number: int, fields: list[str], frame: _Frame) -> None:
    """Parse ``atom x y z element charge n fx fy fz`` into ``frame``."""
    if len(fields) != 10:
        _fail(path, line_number, f"'atom' line has {len(fields) - 1} values, expected 9 "
              "(x y z element charge n fx fy fz)", "atom", "write all nine columns, with 0 for unknown values")
    element = fields[4]
    if element not in ASE_ATOMIC_NUMBERS or element == "X":
        _fail(path, line_number, f"'atom' line has unknown element {element!r}", "atom",
              "write the chemical symbol in the fifth column, e.g. 'Pd'")
    numbers = _numbers(path, line_number, fields[:4] + fields[5:], 8, "atom")
    frame.positions.append(numbers[0:3])
    frame.symbols.append(element)
    frame.charges.append(numbers[3])
    frame.forces.append(numbers[5:8])


def _to_atoms(path, line_number: int, frame: _Frame) -> Atoms:
    if len(frame.lattice) not in (0, 3):
        _fail(path, line_number, f"block from line {frame.begin_line} has {len(frame.lattice)} 'lattice' lines, "
              "expected 3 (periodic) or 0 (not periodic)", "lattice", "write all three cell vectors or none")
    periodic = len(frame.lattice) == 3
    atoms = Atoms(
        symbols=frame.symbols,
        positions=np.array(frame.positions, dtype=float).reshape(-1, 3),
        cell=np.array(frame.lattice) if periodic else None,
        pbc=periodic,
    )
    atoms.set_initial_charges(np.array(frame.charges, dtype=float))
    atoms.info["comment"] = frame.comment
    if frame.total_charge is not None:
        atoms.info["charge"] = frame.total_charge
    results = {"forces": np.array(frame.forces, dtype=float).reshape(-1, 3)}
    if frame.energy is not None:
        results["energy"] = frame.energy
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def write_n2p2(path: str | os.PathLike, atoms_list: Iterable[Atoms]) -> None:
    """Write structures to an n2p2 ``input.data`` file, atomically.

    Energies and forces come from ``atoms.calc``; each number is written as the
    shortest text that reads back as the same float. Charges are
    ``atoms.get_initial_charges()``, the total charge ``atoms.info["charge"]`` or their
    sum. A structure is written with lattice lines when any direction is periodic.

    Raises
    ------
    ValueError
        If a structure has no energy or forces, or is periodic in some but not all
        directions (n2p2 cells are periodic in all three).
    """
    with atomic_path(path) as temp, open(temp, "w", encoding="utf-8") as handle:
        for index, atoms in enumerate(atoms_list):
            handle.write(_format_block(index, atoms))


def _format_block(index: int, atoms: Atoms) -> str:
    if atoms.calc is None or "energy" not in atoms.calc.results or "forces" not in atoms.calc.results:
        raise ValueError(f"structure {index} has no energy or forces in atoms.calc; attach a SinglePointCalculator")
    if atoms.pbc.any() and not atoms.pbc.all():
        raise ValueError(f"structure {index} has pbc={atoms.pbc.tolist()}; n2p2 supports only all or none periodic")
    energy = float(atoms.calc.results["energy"])
    forces = np.asarray(atoms.calc.results["forces"], dtype=float)
    charges = atoms.get_initial_charges()
    total_charge = float(atoms.info.get("charge", charges.sum()))

    comment = str(atoms.info.get("comment", "")).replace("\n", " ")
    lines = ["begin", f"comment {comment}".rstrip()]
    if atoms.pbc.all():
        lines += ["lattice " + " ".join(_format_float(v) for v in vector) for vector in atoms.get_cell()]
    for symbol, position, charge, force in zip(atoms.get_chemical_symbols(), atoms.positions, charges, forces):
        values = [*map(_format_float, position), symbol, _format_float(charge), "0.0", *map(_format_float, force)]
        lines.append("atom " + " ".join(values))
    lines += [f"energy {_format_float(energy)}", f"charge {_format_float(total_charge)}", "end"]
    return "\n".join(lines) + "\n"


def _format_float(value: float) -> str:
    """Return the shortest text that reads back as the same float (``repr``)."""
    return repr(float(value))
