"""Build the grounded development corpus (data/devsets/grounded/corpus/) from documents and
tables that ship in packages, for `conclave eval data/devsets/grounded/grounded-test.jsonl`.

- `countries/*.md`: one Markdown file per country, written out from `countryinfo`'s table
  (capital, area, population, borders, calling code, domain, currencies, time zones, regions);
- `elements.pdf`: one page per element, written out from `periodictable`'s tables (atomic
  number, mass, density, crystal structure, covalent radius), made with `fpdf2`;
- `us-states.txt`: one paragraph per state, from `us`'s table (read from its source: the
  package itself needs jellyfish): abbreviations, capital, statehood year, counties, time zones;
- `python/*.html`: pages of the Python documentation as Debian's `python3-doc` ships them
  (`apt-get install python3-doc`), copied unchanged.

The questions (grounded-dev.jsonl, grounded-test.jsonl) are written by hand against this
corpus; the countries, elements, states and pages below are fixed lists, so the same packages
give the same corpus.
Run from the repository root:

    .venv/bin/pip install --no-deps --require-hashes -r requirements/devsets.txt
    .venv/bin/python data/devsets/grounded/build_corpus.py
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[3] / "scripts"))
from build_devsets import package_dir

CORPUS = Path(__file__).parent / "corpus"
PYTHON_DOCS = Path("/usr/share/doc/python3.11/html/library")

COUNTRIES = (
    "andorra", "belize", "benin", "bhutan", "brunei", "comoros", "djibouti", "eritrea", "fiji",
    "guyana", "kyrgyzstan", "laos", "latvia", "lesotho", "malawi", "mauritania", "moldova",
    "montenegro", "oman", "palau", "paraguay", "suriname", "tonga", "vanuatu",
)  # fmt: skip
ELEMENTS = (
    4, 5, 12, 13, 22, 23, 24, 25, 27, 28, 29, 30, 32, 40, 42, 45, 46, 50, 74, 78,
)  # fmt: skip
STATES = (
    "Vermont", "Delaware", "Nebraska", "Oregon", "Montana", "Kentucky", "Idaho", "Maine",
    "Arizona", "Iowa", "Nevada", "Utah",
)  # fmt: skip
PYTHON_PAGES = ("zipfile.html", "secrets.html", "bisect.html", "textwrap.html")
PDF_DATE = datetime(2026, 1, 1, tzinfo=UTC)

ISO3_NAMES: dict[str, str] = {}


def _listed(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def country_names() -> dict[str, str]:
    names = {}
    for file in (package_dir("countryinfo") / "data").glob("*.json"):
        entry = json.loads(file.read_text(encoding="utf-8"))
        iso3 = (entry.get("ISO") or {}).get("alpha3")
        if iso3:
            names[iso3] = entry["name"]
    return names


def country_page(key: str, names: dict[str, str]) -> str:
    entry = json.loads((package_dir("countryinfo") / "data" / f"{key}.json").read_text("utf-8"))
    name = entry["name"]
    borders = [names.get(code, code) for code in entry.get("borders") or []]
    border_text = (
        f"{name} borders {_listed(borders)}."
        if borders
        else f"{name} has no land border with another country."
    )
    provinces = entry.get("provinces") or []
    zones = entry.get("timezones") or []
    lines = [
        f"# {name}",
        "",
        "## Overview",
        "",
        f"{name} is a country in {entry.get('subregion') or entry.get('region')} "
        f"({entry.get('region')}). Its capital is {entry['capital']}. People from {name} "
        f"are called {entry.get('demonym') or name}.",
        "",
        "## Land and people",
        "",
        f"The area of {name} is {entry['area']:,} square kilometres. {border_text} "
        f"Its recorded population is {entry['population']:,}.",
        f"The country is divided into {len(provinces)} provinces or regions"
        + (f", among them {_listed(provinces[:3])}." if provinces else "."),
        "",
        "## Practical facts",
        "",
        f"The international calling code of {name} is +{(entry.get('callingCodes') or ['?'])[0]}. "
        f"Its internet country domain is {(entry.get('tld') or ['?'])[0]}. "
        f"Currency codes in use: {_listed(entry.get('currencies') or [])}. "
        f"Time zone: {_listed(zones)}. "
        f"Its ISO 3166 codes are {entry['ISO']['alpha2']} and {entry['ISO']['alpha3']}.",
        "",
    ]
    return "\n".join(lines)


def write_countries() -> None:
    folder = CORPUS / "countries"
    folder.mkdir(parents=True, exist_ok=True)
    names = country_names()
    for key in COUNTRIES:
        (folder / f"{key}.md").write_text(country_page(key, names), encoding="utf-8")


STRUCTURES = {
    "bcc": "body-centred cubic",
    "fcc": "face-centred cubic",
    "hcp": "hexagonal close-packed",
    "diamond": "diamond cubic",
    "tetragonal": "tetragonal",
    "rhombohedral": "rhombohedral",
    "orthorhombic": "orthorhombic",
    "cubic": "cubic",
    "monoclinic": "monoclinic",
}


def element_page(number: int) -> tuple[str, str]:
    import periodictable
    from periodictable import covalent_radius, crystal_structure  # noqa: F401  (add the data)

    element = periodictable.elements[number]
    name = element.name.capitalize()
    structure = element.crystal_structure or {}
    symmetry = str(structure.get("symmetry", "")).lower()
    shape = STRUCTURES.get(symmetry, symmetry or "not recorded")
    lattice = f" with a lattice constant of {structure['a']} angstrom" if "a" in structure else ""
    density = f"{element.density} g/cm3" if element.density else "not recorded"
    caveat = f" ({element.density_caveat})" if element.density_caveat else ""
    text = (
        f"{name} has the chemical symbol {element.symbol} and atomic number {number}. "
        f"Its standard atomic mass is {element.mass} u. Its density is {density}{caveat}. "
        f"In the solid state it crystallises in a {shape} structure{lattice}. "
        f"Its covalent radius is {element.covalent_radius} angstrom."
    )
    return f"{name} ({element.symbol})", text


def write_elements() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Element data sheets")
    pdf.set_creation_date(PDF_DATE)  # the same bytes every build
    for number in ELEMENTS:
        title, text = element_page(number)
        pdf.add_page()
        pdf.set_font("Helvetica", style="B", size=16)
        pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(CORPUS / "elements.pdf"))


def states() -> dict[str, dict[str, object]]:
    """Every state's fields (and its number of counties), read from `us`'s source."""
    tree = ast.parse((package_dir("us") / "states.py").read_text(encoding="utf-8"))
    found: dict[str, dict[str, object]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "State"):
            continue
        for keyword in node.keywords:
            if keyword.arg is not None or not isinstance(keyword.value, ast.Dict):
                continue
            fields: dict[str, object] = {}
            for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                if not isinstance(key, ast.Constant):
                    continue
                if isinstance(value, ast.Constant):
                    fields[str(key.value)] = value.value
                elif isinstance(value, ast.List) and key.value == "counties":
                    fields["counties"] = len(value.elts)
                elif isinstance(value, ast.List):
                    fields[str(key.value)] = ast.literal_eval(value)
            if "name" in fields:
                found[str(fields["name"])] = fields
    return found


def write_states() -> None:
    table = states()
    paragraphs = []
    for name in STATES:
        state = table[name]
        zones = [str(zone) for zone in state.get("time_zones") or []]  # type: ignore[attr-defined]
        paragraphs.append(
            f"{name} (postal abbreviation {state['abbr']}, AP style {state['ap_abbr']}) became a "
            f"state in {state['statehood_year']}. Its capital is {state['capital']}, in the "
            f"{state['capital_tz']} time zone. The state has {state['counties']} counties. "
            f"Time zones used in the state: {_listed(zones)}."
        )
    text = "Notes on some states of the United States\n\n" + "\n\n".join(paragraphs) + "\n"
    (CORPUS / "us-states.txt").write_text(text, encoding="utf-8")


def copy_python_pages() -> None:
    if not PYTHON_DOCS.is_dir():
        raise SystemExit(f"{PYTHON_DOCS} not found: apt-get install python3-doc")
    folder = CORPUS / "python"
    folder.mkdir(parents=True, exist_ok=True)
    for page in PYTHON_PAGES:
        shutil.copyfile(PYTHON_DOCS / page, folder / page)


def main() -> None:
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    CORPUS.mkdir(parents=True)
    write_countries()
    write_elements()
    write_states()
    copy_python_pages()
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    print(f"wrote {len(files)} files to {CORPUS}")


if __name__ == "__main__":
    main()
