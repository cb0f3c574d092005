"""A seeded, offline stand-in for SQuAD v1.1: encyclopedia-style paragraphs about invented things.

Usage: aics squad synth --out data/squad_synth --train-paragraphs 3000 --dev-paragraphs 600

Every paragraph is about two entities of one kind (four or five in a long one): people, towns, companies,
musical instruments or rivers, with pronounceable invented names ("Marel Tovin", "Quessaby", "the
tovarel"). The entities get facts of the same types as their rivals (two people each born in another town
and year, two towns each on a bank of the same river), so a question must be matched to its entity: the
answer is the value stated for that entity, not the one in the next clause. Facts are told by sentence
templates, entity after entity or fact type by fact type, sometimes two rivals contrasted in one sentence
("Tovin was born in Quessa in 1843, while Lusk was born in Dorrim in 1839"); later mentions are by
surname, pronoun ("She", "the firm") or full name, and a few sentences carry only distractors (other
towns and years). Questions paraphrase their fact ("When did Tovin come into the world?", "Where does the
Isel end?") and their answers are names, years, dates ("12 March 1843"), counts ("12,400", "seven") and
multi-word phrases ("the northern bank of the Isel", "pocket watches"). Span conventions are fixed (a
year or town without its preposition, a location with its article), so that they can be learnt.
A word-matching reader (``baseline.py``) scores poorly on these questions; a reader that finds the entity
and the kind of fact asked for can answer nearly all of them.

``generate`` writes ``train-v1.1.json`` and ``dev-v1.1.json`` in SQuAD v1.1's layout (articles of up to
``ARTICLE_PARAGRAPHS`` paragraphs; every ``answer_start`` points at its ``text``). A train question has one
answer; a dev question has two or three, as in the real dev set: repeats of the first, or a variant one
word shorter or longer ("1843" / "in 1843", "the tovarel" / "tovarel"). A ``long_fraction`` of the
paragraphs are long (about 280 to 480 BERT word pieces), so that readers must split some contexts into
strided windows; the others fit in 256.

Each paragraph has its own random stream derived from (seed, split, index): the same seed gives
byte-identical files, the dev set does not change when only the train size does, and a larger train set
starts with the paragraphs of a smaller one.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aics.core.errors import UserError
from aics.core.io import atomic_write

SPLITS = ("train", "dev")
FILES = {"train": "train-v1.1.json", "dev": "dev-v1.1.json"}
VERSION = "1.1"
ARTICLE_PARAGRAPHS = 5  # paragraphs per article (the last article of a split may have fewer)
MAX_PARAGRAPHS = 1_000_000
QUESTIONS_PER_PARAGRAPH = (4, 6)  # inclusive range; long paragraphs ask two more
DEV_EXTRA_ANSWERS = (1, 2)  # inclusive range of answers added to a dev question's first one
SAME_EXTRA_ANSWER_PROB = 0.6  # an added dev answer repeats the first one, else it is a variant if any
MAX_SENTENCES = 8  # in a normal paragraph; long ones have more
LONG_CHARS = (1000, 1500)  # a long paragraph's least length in characters (3.6 per word piece)

# ---- names ----

ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "tr")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o")  # a, e and o twice as often
CODAS = ("l", "n", "r", "s", "m", "k", "nd", "rn", "st", "sk", "th")
TOWN_ENDINGS = ("by", "holm", "wick", "stad", "ford", "mere", "dale", "ton", "ora", "ia")
INSTRUMENT_ENDINGS = ("el", "ine", "aro", "ette", "on", "ika")

# ---- values ----

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
NUMBER_WORDS = ("three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
OCCUPATIONS = (
    "clockmaker",
    "glassblower",
    "cartographer",
    "botanist",
    "shipwright",
    "violin maker",
    "printer",
    "surveyor",
    "engineer",
    "chemist",
    "astronomer",
    "weaver",
    "bookbinder",
    "physician",
    "architect",
    "painter",
    "organ builder",
    "watchmaker",
    "lens grinder",
    "schoolteacher",
)
SUBJECTS = ("chemistry", "law", "medicine", "astronomy", "music", "mathematics", "botany", "theology")
SCHOOL_KINDS = ("University", "Academy", "College", "Polytechnic")
TOWN_PRODUCTS = (
    "salt mines",
    "blue glass",
    "woollen cloth",
    "copper bells",
    "horse fairs",
    "paper mills",
    "stone bridge",
    "spring festival",
    "cheese market",
    "old harbour",
    "rose gardens",
    "clock tower",
)
COMPANY_PRODUCTS = (
    "pocket watches",
    "brass telescopes",
    "glass lenses",
    "steam pumps",
    "sewing machines",
    "church organs",
    "printing presses",
    "bicycles",
    "rope and sailcloth",
    "kitchen scales",
    "fountain pens",
    "railway lamps",
)
COMPANY_KINDS = ("Instruments", "Works", "Brothers", "Glassworks", "Company", "Mills")
FAMILIES = (
    "bowed lute",
    "long-necked lute",
    "small harp",
    "keyed fiddle",
    "plucked zither",
    "hammered dulcimer",
    "box zither",
    "bowed psaltery",
)
WOODS = ("pear wood", "walnut", "spruce", "maple", "cherry wood", "boxwood", "plum wood", "ash")
DIRECTIONS = ("northern", "southern", "eastern", "western")
UNITS = frozenset({"metres", "kilometres", "people", "strings"})
VARIANT_PREFIXES = frozenset({"in", "on", "at", "by", "of", "the"})

# ---- what the paragraphs say ----
# A kind's groups, in telling order; each states the relations named in its templates. ``{S}`` is the
# subject's mention, ``{s}`` / ``{poss}`` its pronouns; other slots are the entity's values (questions can
# be asked about those that are relations) or helper texts (``{a_occupation}``: the article to use).

GROUPS = {
    "person": ("birth", "occupation", "study", "move", "marriage", "company", "invention", "death"),
    "town": ("location", "population", "founding", "known_for", "elevation"),
    "company": ("founding", "headquarters", "employees", "product", "acquisition"),
    "instrument": ("family", "invention", "material", "region"),
    "river": ("length", "source", "mouth", "largest_town"),
}

TEMPLATES = {
    ("person", "birth"): (
        "{S} was born in {birth_place} in {birth_year}.",
        "{S} was born in {birth_year} in {birth_place}.",
        "{S} came from {birth_place}, where {s} was born in {birth_year}.",
        "Born in {birth_place} in {birth_year}, {S} grew up on a farm.",
        "{S} was a native of {birth_place}, born there in {birth_year}.",
    ),
    ("person", "birth_dated"): (
        "{S} was born in {birth_place} on {birth_date}.",
        "{S} was born on {birth_date} in {birth_place}.",
        "Born on {birth_date} in {birth_place}, {S} was the youngest of four children.",
        "{S} (born {birth_date} in {birth_place}) spent {poss} childhood by the sea.",
    ),
    ("person", "occupation"): (
        "{S} worked as {a_occupation} {occupation}.",
        "{S} trained as {a_occupation} {occupation}.",
        "{S} earned a living as {a_occupation} {occupation}.",
        "By trade, {S} was {a_occupation} {occupation}.",
    ),
    ("person", "study"): (
        "{S} studied {study_subject} at {school}.",
        "{S} read {study_subject} at {school}.",
        "At {school}, {S} took a degree in {study_subject}.",
        "{S} was a student of {study_subject} at {school}.",
    ),
    ("person", "move"): (
        "In {move_year} {S} moved to {move_town}.",
        "{S} moved to {move_town} in {move_year}.",
        "{S} settled in {move_town} in {move_year}.",
        "{S} left for {move_town} in {move_year}.",
        "{S} made {poss} home in {move_town} from {move_year}.",
    ),
    ("person", "marriage"): (
        "{S} married {spouse} in {marriage_year}.",
        "In {marriage_year} {S} married the {spouse_occupation} {spouse}.",
        "{S} and {spouse} were married in {marriage_year}.",
        "{S} wed {spouse}, {a_spouse_occupation} {spouse_occupation}, in {marriage_year}.",
    ),
    ("person", "company"): (
        "{S} founded {company} in {found_year}.",
        "In {found_year}, {S} set up a firm called {company}.",
        "{S} established {company} in {found_year}.",
        "{S} started {company}, a small workshop, in {found_year}.",
    ),
    ("person", "invention"): (
        "{S} invented the {invention} in {invent_year}.",
        "In {invent_year}, {S} built the first {invention}.",
        "{S} is remembered as the inventor of the {invention}.",
        "{S} created the {invention}, a small string instrument, in {invent_year}.",
    ),
    ("person", "death"): (
        "{S} died in {death_place} in {death_year}.",
        "{S} died in {death_year} in {death_place}.",
        "{S} spent {poss} last years in {death_place}, where {s} died in {death_year}.",
        "{S} died at {poss} home in {death_place} in {death_year}.",
    ),
    ("person", "death_dated"): (
        "{S} died in {death_place} on {death_date}.",
        "{S} died on {death_date} in {death_place}.",
        "{S} spent {poss} last years in {death_place}, where {s} died on {death_date}.",
    ),
    ("town", "location"): (
        "{S} lies {loc_prep} {location}.",
        "{S} is situated {loc_prep} {location}.",
        "{S} is a market town {loc_prep} {location}.",
        "{S} was built {loc_prep} {location}.",
    ),
    ("town", "population"): (
        "{S} has a population of {population}.",
        "{S} is home to some {population} people.",
        "About {population} people live in {S}.",
        "{S} has {population} inhabitants.",
    ),
    ("town", "founding"): (
        "{S} was founded in {found_year} by {founder}.",
        "{founder} founded {S} in {found_year}.",
        "{S} was established by {founder} in {found_year}.",
        "{S} dates back to {found_year}, when {founder} built a mill there.",
    ),
    ("town", "known_for"): (
        "{S} is known for its {known_for}.",
        "{S} is famous for its {known_for}.",
        "Visitors come to {S} for its {known_for}.",
        "{S} owes its wealth to its {known_for}.",
    ),
    ("town", "elevation"): (
        "{S} lies at an altitude of {elevation}.",
        "{S} stands {elevation} above sea level.",
        "{S} sits at a height of {elevation}.",
    ),
    ("company", "founding"): (
        "{S} was founded in {found_place} in {found_year} by {founder}.",
        "{founder} started {S} in {found_place} in {found_year}.",
        "{S} was set up by {founder} in {found_year} in {found_place}.",
        "{founder} established {S} in {found_year} in a small workshop in {found_place}.",
    ),
    ("company", "headquarters"): (
        "{S} has its headquarters in {headquarters}.",
        "{S} is based in {headquarters}.",
        "The head office of {S} is in {headquarters}.",
        "Today {S} is run from offices in {headquarters}.",
    ),
    ("company", "employees"): (
        "{S} employs about {employees} people.",
        "{S} has {employees} employees.",
        "{S} has a workforce of {employees}.",
        "Some {employees} people work for {S}.",
    ),
    ("company", "product"): (
        "{S} makes {product}.",
        "{S} is best known for its {product}.",
        "{S} produces {product}.",
        "The main products of {S} are {product}.",
    ),
    ("company", "acquisition"): (
        "In {acquired_year}, {S} was bought by {buyer}.",
        "{buyer} took over {S} in {acquired_year}.",
        "{S} was acquired by {buyer} in {acquired_year}.",
        "{S} became part of {buyer} in {acquired_year}.",
    ),
    ("instrument", "family"): (
        "{S} is a {family} with {strings} strings.",
        "{S}, a {family}, has {strings} strings.",
        "A {family} with {strings} strings, {S} is often heard at weddings.",
        "{S} is a kind of {family} and has {strings} strings.",
    ),
    ("instrument", "invention"): (
        "{S} was invented by {inventor} in {invent_place} in {invent_year}.",
        "{inventor} built the first {name} in {invent_place} in {invent_year}.",
        "The first {name} was made by {inventor} in {invent_year}, in {invent_place}.",
        "{S} was created in {invent_year} by {inventor}, {a_occupation} {occupation} from {invent_place}.",
    ),
    ("instrument", "material"): (
        "{S} is made of {material}.",
        "The body of {S} is carved from {material}.",
        "Makers build {S} from {material}.",
        "{S} is usually made from {material}.",
    ),
    ("instrument", "region"): (
        "{S} is played mainly in {region}.",
        "{S} is popular in {region}.",
        "Most players of {S} live in {region}.",
        "{S} is still common in {region}.",
    ),
    ("river", "length"): (
        "{S} is {length} long.",
        "{S} runs for {length}.",
        "{S} has a length of {length}.",
        "{S} flows for {length} in all.",
    ),
    ("river", "source"): (
        "{S} rises in {source}.",
        "{S} has its source in {source}.",
        "{S} begins in {source}.",
        "The source of {S} lies in {source}.",
    ),
    ("river", "mouth"): (
        "{S} flows into {mouth}.",
        "{S} empties into {mouth}.",
        "{S} ends in {mouth}.",
        "{S} joins {mouth} near the coast.",
    ),
    ("river", "largest_town"): (
        "The largest town on {S} is {largest_town}.",
        "{largest_town} is the biggest town on the banks of {S}.",
        "{S} passes through {largest_town}, the largest town on its course.",
    ),
}

# Sentences that answer no question but name towns, rivers and years, as distractors.
FILLERS = (
    "The winters in {town} are long and cold.",
    "Records from that period were lost in a fire in {year}.",
    "A stone bridge over the {river} was completed in {year}.",
    "Trade with {town} grew quickly in the following decades.",
    "The region was poor and thinly settled at the time.",
    "A railway line to {town} opened in {year}.",
    "Floods on the {river} damaged much of the valley in {year}.",
    "Several letters from those years are kept in the archive at {town}.",
    "A new road along the {river} shortened the journey to {town}.",
    "The harvest failed across the district in {year}.",
    "Much of the old quarter of {town} burned down in {year}.",
    "Fishing on the {river} was an important trade until {year}.",
)

# Question forms per (kind, relation); ``{E}`` is the entity as the question names it.
QUESTIONS = {
    ("person", "birth_place"): (
        "Where was {E} born?",
        "What is {E}'s birthplace?",
        "In which town did {E} come into the world?",
        "What town is {E} originally from?",
        "What is the hometown of {E}?",
    ),
    ("person", "birth_year"): (
        "In what year was {E} born?",
        "What year did {E} come into the world?",
        "What is {E}'s year of birth?",
        "In which year was {E} born?",
    ),
    ("person", "birth_date"): (
        "On what date was {E} born?",
        "What is {E}'s date of birth?",
        "On which day did {E} come into the world?",
    ),
    ("person", "occupation"): (
        "What was {E}'s profession?",
        "What did {E} do for a living?",
        "What was the trade of {E}?",
        "What occupation did {E} have?",
        "What kind of work did {E} do?",
    ),
    ("person", "study_subject"): (
        "What did {E} study?",
        "What was {E}'s field of study?",
        "Which subject did {E} take up?",
        "What discipline did {E} pursue?",
    ),
    ("person", "school"): (
        "Where did {E} study?",
        "Which institution did {E} attend?",
        "Where was {E} educated?",
        "At which school did {E} study?",
    ),
    ("person", "move_town"): (
        "To which town did {E} relocate?",
        "Where did {E} move?",
        "Where did {E} settle?",
        "Which town became {E}'s new home?",
        "Where did {E} go to live?",
    ),
    ("person", "move_year"): (
        "When did {E} relocate to {move_town}?",
        "In what year did {E} move to {move_town}?",
        "When did {E} settle in {move_town}?",
        "When did {E} go to live in {move_town}?",
    ),
    ("person", "spouse"): (
        "Whom did {E} marry?",
        "Who was {E}'s {spouse_role}?",
        "Who did {E} wed?",
        "To whom was {E} married?",
    ),
    ("person", "marriage_year"): (
        "When did {E} marry?",
        "In what year did {E} wed?",
        "When did {E} get married?",
        "In which year did {E}'s wedding take place?",
    ),
    ("person", "company"): (
        "What company did {E} found?",
        "Which firm did {E} start?",
        "What business did {E} establish?",
        "What is the name of the firm {E} set up?",
    ),
    ("person", "found_year"): (
        "When did {E} found {company}?",
        "In what year did {E} start {company}?",
        "When was {company} set up?",
        "In which year did {E} establish {company}?",
    ),
    ("person", "invention"): (
        "What did {E} invent?",
        "Which instrument is credited to {E}?",
        "What instrument did {E} create?",
        "What is {E} remembered for inventing?",
    ),
    ("person", "invent_year"): (
        "When did {E} invent the {invention}?",
        "In what year did {E} create the {invention}?",
        "When did {E} build the first {invention}?",
    ),
    ("person", "death_place"): (
        "Where did {E} die?",
        "In which town did {E} pass away?",
        "Where did {E}'s life come to an end?",
        "What town did {E} die in?",
    ),
    ("person", "death_date"): (
        "On what date did {E} die?",
        "What was the date of {E}'s death?",
        "On which day did {E} pass away?",
    ),
    ("person", "death_year"): (
        "In what year did {E} pass away?",
        "What year did {E} die?",
        "In which year did {E}'s life end?",
    ),
    ("town", "location"): (
        "Where is {E} located?",
        "Where does {E} lie?",
        "Where can {E} be found?",
        "What is the location of {E}?",
    ),
    ("town", "population"): (
        "How many people live in {E}?",
        "What is the population of {E}?",
        "How many inhabitants does {E} have?",
        "How many residents does {E} have?",
        "How large is the population of {E}?",
    ),
    ("town", "found_year"): (
        "When was {E} founded?",
        "In what year was {E} established?",
        "When did {E} come into being?",
        "In which year was {E} first settled?",
    ),
    ("town", "founder"): (
        "Who founded {E}?",
        "Who established {E}?",
        "By whom was {E} founded?",
        "Who is considered the founder of {E}?",
    ),
    ("town", "known_for"): (
        "What is {E} known for?",
        "What is {E} famous for?",
        "For what is {E} renowned?",
        "What is {E} noted for?",
        "What has made {E} well known?",
    ),
    ("town", "elevation"): (
        "How high is {E}?",
        "At what elevation is {E}?",
        "How far above sea level is {E}?",
        "What is the altitude of {E}?",
    ),
    ("company", "found_year"): (
        "When was {E} established?",
        "In what year was {E} founded?",
        "When did {E} begin trading?",
        "In which year was {E} set up?",
    ),
    ("company", "founder"): (
        "Who founded {E}?",
        "Who started {E}?",
        "Who set up {E}?",
        "Who was the founder of {E}?",
    ),
    ("company", "found_place"): (
        "In which town was {E} founded?",
        "Where was {E} established?",
        "Where did {E} start out?",
        "In what town was {E} set up?",
    ),
    ("company", "headquarters"): (
        "Where is {E} headquartered?",
        "Where does {E} have its main office?",
        "In which town is {E} based?",
        "Where is {E}'s head office?",
    ),
    ("company", "employees"): (
        "How many people work for {E}?",
        "How many employees does {E} have?",
        "How large is {E}'s workforce?",
        "How many staff does {E} employ?",
    ),
    ("company", "product"): (
        "What does {E} make?",
        "What does {E} produce?",
        "What does {E} manufacture?",
        "What products is {E} known for?",
    ),
    ("company", "buyer"): (
        "Which company bought {E}?",
        "Who acquired {E}?",
        "Which firm took over {E}?",
        "What company did {E} become part of?",
    ),
    ("company", "acquired_year"): (
        "When was {E} acquired?",
        "In what year was {E} bought?",
        "When did {E} change owners?",
        "In which year was {E} taken over?",
    ),
    ("instrument", "family"): (
        "What kind of instrument is {E}?",
        "What type of instrument is {E}?",
        "What sort of instrument is {E}?",
        "{E} is what kind of instrument?",
    ),
    ("instrument", "strings"): (
        "How many strings does {E} have?",
        "How many strings are on {E}?",
        "What is the number of strings on {E}?",
        "How many strings is {E} fitted with?",
    ),
    ("instrument", "inventor"): (
        "Who invented {E}?",
        "Who built the first {name}?",
        "Who created {E}?",
        "Who is credited with the invention of {E}?",
    ),
    ("instrument", "invent_year"): (
        "When was {E} invented?",
        "In what year was the first {name} made?",
        "When did {E} first appear?",
        "In which year was {E} created?",
    ),
    ("instrument", "invent_place"): (
        "Where was {E} invented?",
        "In which town was the first {name} built?",
        "Where does {E} come from?",
        "In what town was {E} created?",
    ),
    ("instrument", "material"): (
        "What is {E} made of?",
        "From what wood is {E} built?",
        "What material is used for {E}?",
        "Out of what is {E} carved?",
    ),
    ("instrument", "region"): (
        "Where is {E} mostly played?",
        "In what region is {E} popular?",
        "Where is {E} most common?",
        "Where do most players of {E} live?",
    ),
    ("river", "length"): (
        "How long is {E}?",
        "What is the length of {E}?",
        "Over what distance does {E} flow?",
        "How many kilometres long is {E}?",
    ),
    ("river", "source"): (
        "Where does {E} begin?",
        "Where is the source of {E}?",
        "Where does {E} start?",
        "In what area does {E} originate?",
        "Where does {E} rise?",
    ),
    ("river", "mouth"): (
        "Into what does {E} drain?",
        "Where does {E} end?",
        "What does {E} flow into?",
        "Where is the mouth of {E}?",
        "Into which body of water does {E} empty?",
    ),
    ("river", "largest_town"): (
        "What is the largest town on {E}?",
        "Which is the biggest town along {E}?",
        "What town is the largest on {E}'s banks?",
    ),
}
# "When was X born?" asks for the most precise fact stated: the date if there is one, else the year.
WHEN_QUESTIONS = {
    ("birth_date", "birth_year"): ("When was {E} born?", "When did {E} come into the world?"),
    ("death_date", "death_year"): ("When did {E} die?", "When did {E} pass away?"),
}
DATED_GROUPS = ("birth", "death")  # a person's group told with a full date when it has one
DATE_PROB = 0.5  # how often a person's birth, and independently death, has a full date
ANAPHORS = {"town": "the town", "company": "the firm", "instrument": "the instrument", "river": "the river"}
# Words no invented name may be: every word of the texts above, and a few more it could spell.
_RESERVED = frozenset(
    word.lower()
    for text in [
        *(t for forms in TEMPLATES.values() for t in forms),
        *(q for forms in QUESTIONS.values() for q in forms),
        *FILLERS,
        *(q for forms in WHEN_QUESTIONS.values() for q in forms),
        *OCCUPATIONS,
        *SUBJECTS,
        *TOWN_PRODUCTS,
        *COMPANY_PRODUCTS,
        *COMPANY_KINDS,
        *SCHOOL_KINDS,
        *FAMILIES,
        *WOODS,
        *MONTHS,
        *NUMBER_WORDS,
        "land sand hand band bond pond fund bend send mend lend tend best last past vast mist list most post",
        "host lost must dust rust desk disk mask task risk dusk tusk barn burn turn torn horn born worn path",
        "bath math moth both talon demon lemon melon salon baron robin satin human bison",
    ]
    for word in text.replace("{", " ").replace("}", " ").split()
)


# ---- random draws ----


class _Draw:
    """The few random choices the generator makes, over one numpy stream."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def integer(self, low: int, high: int) -> int:
        """Uniform over ``low..high`` inclusive."""
        return int(self.rng.integers(low, high + 1))

    def sample(self, options, k: int) -> list:
        return [options[i] for i in sorted(self.rng.choice(len(options), size=k, replace=False).tolist())]

    def hex(self, digits: int) -> str:
        return "".join(self.pick("0123456789abcdef") for _ in range(digits))


def _syllable(draw: _Draw, coda_prob: float) -> str:
    return draw.pick(ONSETS) + draw.pick(VOWELS) + (draw.pick(CODAS) if draw.chance(coda_prob) else "")


def _first_name(draw: _Draw) -> str:
    return (_syllable(draw, 0.0) + _syllable(draw, 0.7)).capitalize()


def _surname(draw: _Draw) -> str:
    if draw.chance(0.25):
        return _syllable(draw, 1.0).capitalize()
    return (_syllable(draw, 0.2) + _syllable(draw, 0.8)).capitalize()


def _place_name(draw: _Draw) -> str:
    stem = _syllable(draw, 0.3) + _syllable(draw, 0.0)
    return (
        stem + draw.pick(TOWN_ENDINGS) if draw.chance(0.5) else stem + _syllable(draw, 0.5)[1:]
    ).capitalize()


def _short_name(draw: _Draw) -> str:
    """Rivers, lakes, hills: a vowel-led or two-syllable name ("Isel", "Tamra")."""
    lead = draw.pick(VOWELS) if draw.chance(0.5) else ""
    return (lead + _syllable(draw, 0.0) + draw.pick(CODAS)).capitalize()


def _instrument_name(draw: _Draw) -> str:
    return _syllable(draw, 0.0) + _syllable(draw, 0.3) + draw.pick(INSTRUMENT_ENDINGS)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# ---- paragraphs ----


@dataclass
class _Entity:
    kind: str
    name: str  # as first mentioned: "Marel Tovin", "the tovarel", "the Isel"
    short: str  # a later mention: the surname for people, the name otherwise
    gender: str = ""  # "f" / "m" for people
    values: dict[str, str] = field(default_factory=dict)  # relation or helper slot -> text
    groups: list[str] = field(default_factory=list)


@dataclass
class _Fact:
    entity: _Entity
    relation: str
    start: int  # character span of the answer in the context
    end: int


class _ParagraphWriter:
    """Invents one paragraph's entities, tells their facts, and asks about them."""

    def __init__(self, draw: _Draw):
        self.draw = draw
        self.names: set[str] = set()
        self.years: set[int] = set()
        self.values: set[str] = set()

    def fresh(self, make) -> str:
        """A name from ``make`` not used yet in this paragraph (no two things share a name or a word), and
        not a word the templates use ("Born" would make a poor river)."""
        while True:
            name = make(self.draw)
            words = name.lower().split()
            if len(name) > 2 and not any(w in self.names or w in _RESERVED for w in words):
                self.names.update(words)
                return name

    def distinct(self, options: tuple[str, ...]) -> str:
        """One of ``options`` that no other entity of this paragraph has, so rivals differ in every fact."""
        left = [o for o in options if o not in self.values]
        choice = self.draw.pick(left or options)
        self.values.add(choice)
        return choice

    def year(self, low: int, high: int) -> int:
        """A year in ``low..high`` that no other fact of this paragraph has, if one is found in a few tries
        (ranges are decades wide; a repeat would only give two facts the same answer text)."""
        for _ in range(100):
            y = self.draw.integer(low, high)
            if y not in self.years:
                break
        self.years.add(y)
        return y

    def count(self, low: int, high: int, step: int) -> str:
        n = self.draw.integer(low // step, high // step) * step
        return f"{n:,}"

    def person_name(self) -> str:
        return f"{self.fresh(_first_name)} {self.fresh(_surname)}"

    def company_name(self) -> str:
        d = self.draw
        form = d.integer(0, 2)
        if form == 0:
            return f"{self.fresh(_surname)} & {self.fresh(_surname)}"
        if form == 1:
            return f"{self.fresh(_surname)} {d.pick(COMPANY_KINDS)}"
        return f"{self.fresh(_place_name)} {d.pick(COMPANY_KINDS)}"

    # -- entities of each kind, with every value their groups may state --

    def person(self) -> _Entity:
        d = self.draw
        first, last = self.fresh(_first_name), self.fresh(_surname)
        e = _Entity("person", f"{first} {last}", last, gender=d.pick("fm"))
        born = self.year(1700, 1920)
        spouse_occupation = self.distinct(OCCUPATIONS)
        e.values = {
            "birth_place": self.fresh(_place_name),
            "birth_year": str(born),
            "occupation": self.distinct(OCCUPATIONS),
            "study_subject": self.distinct(SUBJECTS),
            "school": f"the {d.pick(SCHOOL_KINDS)} of {self.fresh(_place_name)}",
            "move_town": self.fresh(_place_name),
            "move_year": str(self.year(born + 18, born + 30)),
            "spouse": self.person_name(),
            "spouse_occupation": spouse_occupation,
            "a_spouse_occupation": _article(spouse_occupation),
            "spouse_role": "husband" if e.gender == "f" else "wife",
            "marriage_year": str(self.year(born + 20, born + 35)),
            "company": self.company_name(),
            "found_year": str(self.year(born + 25, born + 45)),
            "invention": self.fresh(_instrument_name),
            "invent_year": str(self.year(born + 25, born + 50)),
            "death_place": self.fresh(_place_name),
            "death_year": str(self.year(born + 55, born + 90)),
        }
        e.values["a_occupation"] = _article(e.values["occupation"])
        for group in DATED_GROUPS:
            if d.chance(DATE_PROB):
                e.values[f"{group}_date"] = f"{d.integer(1, 28)} {d.pick(MONTHS)} {e.values[f'{group}_year']}"
        return e

    def town(self, river: str) -> _Entity:
        d = self.draw
        name = self.fresh(_place_name)
        e = _Entity("town", name, name)
        shape = d.integer(0, 4)
        if shape == 0:
            prep, location = "on", f"the {self.distinct(DIRECTIONS)} bank of the {river}"
        elif shape == 1:
            prep, location = "at", f"the mouth of the {river}"
        elif shape == 2:
            prep, location = "at", f"the foot of Mount {self.fresh(_short_name)}"
        elif shape == 3:
            prep, location = "on", f"the shore of Lake {self.fresh(_short_name)}"
        else:
            prep, location = "in", f"the {self.fresh(_short_name)} valley"
        e.values = {
            "loc_prep": prep,
            "location": location,
            "population": self.count(300, 90_000, 10 if d.chance(0.3) else 100),
            "found_year": str(self.year(900, 1800)),
            "founder": self.person_name(),
            "known_for": self.distinct(TOWN_PRODUCTS),
            "elevation": f"{self.count(20, 2_400, 10)} metres",
        }
        return e

    def company(self) -> _Entity:
        name = self.company_name()
        e = _Entity("company", name, name)
        founded = self.year(1780, 1960)
        e.values = {
            "found_year": str(founded),
            "founder": self.person_name(),
            "found_place": self.fresh(_place_name),
            "headquarters": self.fresh(_place_name),
            "employees": self.count(40, 25_000, 10),
            "product": self.distinct(COMPANY_PRODUCTS),
            "buyer": self.company_name(),
            "acquired_year": str(self.year(founded + 10, founded + 80)),
        }
        return e

    def instrument(self) -> _Entity:
        d = self.draw
        name = self.fresh(_instrument_name)
        e = _Entity("instrument", f"the {name}", f"the {name}")
        occupation = self.distinct(OCCUPATIONS)
        e.values = {
            "name": name,
            "family": self.distinct(FAMILIES),
            "strings": self.distinct(NUMBER_WORDS),
            "inventor": self.person_name(),
            "occupation": occupation,
            "a_occupation": _article(occupation),
            "invent_year": str(self.year(1500, 1950)),
            "invent_place": self.fresh(_place_name),
            "material": self.distinct(WOODS),
            "region": d.pick(
                (
                    f"the {self.fresh(_short_name)} valley",
                    f"the hills around {self.fresh(_place_name)}",
                    f"the {self.fresh(_short_name)} islands",
                )
            ),
        }
        return e

    def river(self) -> _Entity:
        d = self.draw
        name = self.fresh(_short_name)
        e = _Entity("river", f"the {name}", f"the {name}")
        e.values = {
            "length": f"{self.count(40, 1_900, 1)} kilometres",
            "source": d.pick(
                (
                    f"the {self.fresh(_short_name)} hills",
                    f"the {self.fresh(_short_name)} mountains",
                    f"a spring near {self.fresh(_place_name)}",
                    f"Lake {self.fresh(_short_name)}",
                )
            ),
            "mouth": d.pick(
                (
                    f"Lake {self.fresh(_short_name)}",
                    f"the {self.fresh(_short_name)} Sea",
                    f"{self.fresh(_short_name)} Bay",
                    f"the {self.fresh(_short_name)}",
                )
            ),
            "largest_town": self.fresh(_place_name),
        }
        return e

    # -- telling --

    def mention(self, e: _Entity, told: set[int], anaphor_ok: bool) -> str:
        """How the text names ``e`` now: in full the first time, later by surname, pronoun or in full."""
        if id(e) not in told:
            told.add(id(e))
            return e.name
        if anaphor_ok and self.draw.chance(0.5):
            if e.kind == "person":
                return "she" if e.gender == "f" else "he"
            return ANAPHORS[e.kind] if self.draw.chance(0.5) else "it"
        if e.kind == "person" and self.draw.chance(0.6):
            return e.short
        return e.name

    def clause(
        self, e: _Entity, group: str, told: set[int], anaphor_ok: bool, leading_only: bool
    ) -> tuple[str, list[_Fact], bool]:
        """One sentence (with its final period) telling ``group`` of ``e``, the facts it states with their
        spans in the sentence, and whether it names ``e`` by a pronoun or "the firm" (only when ``e`` is
        the sentence's subject and ``anaphor_ok``: the previous sentence was about ``e``)."""
        key = (e.kind, f"{group}_dated" if group in DATED_GROUPS and f"{group}_date" in e.values else group)
        templates = TEMPLATES[key]
        if leading_only:
            templates = [t for t in templates if t.startswith("{S}")]
        template = self.draw.pick(templates)
        leading = template.startswith("{S}")
        subject = self.mention(e, told, anaphor_ok and leading)
        anaphoric = subject not in (e.name, e.short)
        pronoun = {"f": ("she", "her"), "m": ("he", "his")}.get(e.gender, ("it", "its"))
        pieces, facts, at = [], [], 0
        for literal, slot, _, _ in string.Formatter().parse(template):
            pieces.append(literal)
            at += len(literal)
            if slot is None:
                continue
            if slot == "S":
                text = subject
            elif slot in ("s", "poss"):
                text = pronoun[0] if slot == "s" else pronoun[1]
            else:
                text = e.values[slot]
                if (e.kind, slot) in QUESTIONS:
                    facts.append(_Fact(e, slot, at, at + len(text)))
                if slot.endswith("_date"):  # "12 March 1843" ends with the year
                    facts.append(_Fact(e, slot.replace("_date", "_year"), at + len(text) - 4, at + len(text)))
            pieces.append(text)
            at += len(text)
        sentence = "".join(pieces)
        return sentence[0].upper() + sentence[1:], facts, anaphoric

    def paragraph(self, long: bool) -> tuple[str, list[_Fact], list[_Entity]]:
        d = self.draw
        kind = d.pick(tuple(GROUPS))
        groups = GROUPS[kind]
        # A long paragraph tells more rivals (five of a kind with few fact types), each at length.
        n_entities = (4 if len(groups) > 4 else 5) if long else 2
        river = self.fresh(_short_name)  # towns share it, so "the Isel" does not tell them apart
        entities = [self.town(river) if kind == "town" else getattr(self, kind)() for _ in range(n_entities)]
        if long:
            for e in entities:
                e.groups = d.sample(groups, d.integer(len(groups) - 1, len(groups)))
        else:
            shared = d.sample(groups, d.integer(2, 3))
            for e in entities:
                extra = [g for g in groups if g not in shared]
                e.groups = sorted(shared + ([d.pick(extra)] if d.chance(0.5) else []), key=groups.index)

        # Clauses in telling order: entity by entity, or fact type by fact type (rivals side by side).
        if d.chance(0.5):
            order = [(e, g) for e in entities for g in e.groups]
        else:
            order = [(e, g) for g in groups for e in entities if g in e.groups]
        sentences: list[tuple[str, list[_Fact], bool]] = []  # text, facts, opens with an anaphor
        told: set[int] = set()
        previous: _Entity | None = None
        i = 0
        while i < len(order):
            e, g = order[i]
            following = order[i + 1] if i + 1 < len(order) else None
            contrast = following is not None and following[1] == g and following[0] is not e and d.chance(0.4)
            text, facts, anaphoric = self.clause(e, g, told, previous is e, leading_only=contrast)
            previous = e
            i += 1
            if contrast:
                # Two rivals in one sentence: "A was born in X in 1843, while B was born in Y in 1839."
                other = following[0]
                second, second_facts, _ = self.clause(other, g, told, False, leading_only=True)
                if second.startswith("The "):
                    second = "t" + second[1:]
                joiner = d.pick((", while ", ", whereas ", "; "))
                offset = len(text) - 1 + len(joiner)
                text = text[:-1] + joiner + second
                facts = facts + [
                    _Fact(f.entity, f.relation, f.start + offset, f.end + offset) for f in second_facts
                ]
                previous = other
                i += 1
            sentences.append((text, facts, anaphoric))

        if long:
            target = d.integer(*LONG_CHARS)
            fillers = 2
        else:
            target = 0
            fillers = min(max(int(d.chance(0.4)), 4 - len(sentences)), MAX_SENTENCES - len(sentences))
        unused = list(FILLERS)
        while unused and (fillers > 0 or sum(len(text) + 1 for text, _, _ in sentences) < target):
            template = unused.pop(d.integer(0, len(unused) - 1))
            text = template.format(
                town=self.fresh(_place_name), river=self.fresh(_short_name), year=self.year(1600, 1990)
            )
            # Never between a sentence and the pronoun that refers back to it.
            slots = [k for k in range(1, len(sentences) + 1) if k == len(sentences) or not sentences[k][2]]
            sentences.insert(d.pick(slots), (text, [], False))
            fillers -= 1

        context, facts = "", []
        for text, sentence_facts, _ in sentences:
            offset = len(context) + (1 if context else 0)
            context = f"{context} {text}" if context else text
            facts += [_Fact(f.entity, f.relation, f.start + offset, f.end + offset) for f in sentence_facts]
        return context, facts, entities

    # -- asking --

    def question(self, fact: _Fact, facts: list[_Fact]) -> str:
        e = fact.entity
        forms = list(QUESTIONS[(e.kind, fact.relation)])
        stated = {f.relation for f in facts if f.entity is e}
        for (date, year), when in WHEN_QUESTIONS.items():
            if e.kind == "person" and fact.relation == (date if date in stated else year):
                forms += when
        named = e.short if e.kind == "person" and self.draw.chance(0.5) else e.name
        text = self.draw.pick(forms).format(E=named, **e.values)
        return text[0].upper() + text[1:]


def _variant(context: str, start: int, end: int, draw: _Draw) -> tuple[int, int]:
    """A span one word shorter or longer than ``[start, end)``, as another annotator might have marked it
    ("the tovarel" / "tovarel", "1843" / "in 1843", "212 kilometres" / "212"); the span itself if none."""
    words = context[start:end].split(" ")
    options = []
    if len(words) > 1 and words[0].lower() in ("the", "a", "an"):
        options.append((start + len(words[0]) + 1, end))
    if len(words) > 1 and words[-1] in UNITS:
        options.append((start, end - len(words[-1]) - 1))
    before = context[:start]
    if before.endswith(" "):
        previous = before[:-1].rsplit(" ", 1)[-1]
        if previous.lower() in VARIANT_PREFIXES:
            options.append((start - 1 - len(previous), end))
    return draw.pick(options) if options else (start, end)


def make_paragraph(rng: np.random.Generator, split: str, index: int, long: bool) -> dict:
    """One SQuAD paragraph (``context`` and ``qas``) from ``rng``; dev questions get extra answers."""
    draw = _Draw(rng)
    writer = _ParagraphWriter(draw)
    context, facts, entities = writer.paragraph(long)
    asked = [f for f in facts if any(f.entity is e for e in entities)]
    # Prefer facts whose type the rival also has: those are the questions word matching gets wrong.
    rival_types = {f.relation for f in asked if sum(g.relation == f.relation for g in asked) > 1}
    low, high = QUESTIONS_PER_PARAGRAPH
    n_questions = min(draw.integer(low, high) + (2 if long else 0), len(asked))
    weights = np.array([2.0 if f.relation in rival_types else 1.0 for f in asked])
    chosen = sorted(
        rng.choice(len(asked), size=n_questions, replace=False, p=weights / weights.sum()).tolist()
    )
    qas = []
    for n, i in enumerate(chosen):
        fact = asked[i]
        spans = [(fact.start, fact.end)]
        if split == "dev":
            for _ in range(draw.integer(*DEV_EXTRA_ANSWERS)):
                same = draw.chance(SAME_EXTRA_ANSWER_PROB)
                spans.append(
                    (fact.start, fact.end) if same else _variant(context, fact.start, fact.end, draw)
                )
        qas.append(
            {
                "answers": [{"answer_start": s, "text": context[s:e]} for s, e in spans],
                "question": writer.question(fact, facts),
                "id": f"{SPLITS.index(split):x}{index:07x}{n:02x}{draw.hex(14)}",
            }
        )
    title = entities[0].name.removeprefix("the ").replace(" ", "_")
    return {"title": title, "paragraph": {"context": context, "qas": qas}}


def _check_count(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{name} {value!r}: must be a whole number from {low} to {high}")
    if not low <= value <= high:
        raise UserError(f"{name} {value}: must be from {low} to {high}")
    return int(value)


def make_split(split: str, paragraphs: int, seed: int = 0, long_fraction: float = 0.1) -> dict:
    """A split as SQuAD v1.1 json (``{"version", "data"}``); paragraph ``i`` depends only on (seed, split,
    i), and so does whether it is long (a draw below ``long_fraction``)."""
    articles: list[dict] = []
    for i in range(paragraphs):
        rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), i]))
        item = make_paragraph(rng, split, i, long=bool(rng.random() < long_fraction))
        if i % ARTICLE_PARAGRAPHS == 0:
            articles.append({"title": item["title"], "paragraphs": []})
        articles[-1]["paragraphs"].append(item["paragraph"])
    return {"version": VERSION, "data": articles}


def split_counts(dataset: dict) -> dict:
    paragraphs = [p for a in dataset["data"] for p in a["paragraphs"]]
    qas = [qa for p in paragraphs for qa in p["qas"]]
    return {
        "articles": len(dataset["data"]),
        "paragraphs": len(paragraphs),
        "questions": len(qas),
        "answers": sum(len(qa["answers"]) for qa in qas),
    }


def generate(
    out_dir: str | Path,
    train_paragraphs: int = 300,
    dev_paragraphs: int = 60,
    seed: int = 0,
    long_fraction: float = 0.1,
) -> dict:
    """Write ``train-v1.1.json`` and ``dev-v1.1.json`` into ``out_dir``; return their counts (articles,
    paragraphs, questions, answers per split) with ``out_dir`` and ``paths``."""
    sizes = {
        "train": _check_count("train_paragraphs", train_paragraphs, 1, MAX_PARAGRAPHS),
        "dev": _check_count("dev_paragraphs", dev_paragraphs, 1, MAX_PARAGRAPHS),
    }
    seed = _check_count("seed", seed, 0, 2**63 - 1)
    if isinstance(long_fraction, bool) or not isinstance(long_fraction, (int, float)):
        raise UserError(f"long_fraction {long_fraction!r}: must be a number from 0 to 1")
    if not 0.0 <= long_fraction <= 1.0:
        raise UserError(f"long_fraction {long_fraction}: must be from 0 to 1")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory; choose another --out")

    counts: dict = {}
    paths = {split: out_dir / FILES[split] for split in SPLITS}
    for split in SPLITS:
        dataset = make_split(split, sizes[split], seed, float(long_fraction))
        try:
            with atomic_write(paths[split], "w") as f:
                json.dump(dataset, f)
        except OSError as e:
            raise UserError(f"{paths[split]}: cannot write the {split} set ({e})") from e
        counts[split] = split_counts(dataset)
    return {**counts, "out_dir": str(out_dir), "paths": {k: str(p) for k, p in paths.items()}}
