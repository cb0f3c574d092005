"""English text for the speech corpora: a seeded sentence generator and the normaliser that turns written text
into what a speaker says.

``SentenceGenerator(seed, vocab_size, min_words, max_words).sentence(index, stream)`` writes one sentence as
a book would print it: statements, questions, exclamations and commands over a curated vocabulary of real
English words (nouns, verbs with their inflections, adjectives, adverbs, names, places), with numbers
(counts, years, decimals, ordinals, dates, money, percentages, clock times, measures), abbreviations (Mr.,
Dr., St., Mt., Jr., e.g., etc., a.m.) and punctuation (commas, semicolons, colons, quotes). A sentence
depends only on (seed, stream, index), so splits drawn from different streams never shift each other.

Three forms of a sentence, as the speech datasets have them:

- raw (``metadata.csv`` column 2 of LJSpeech, ``.original.txt`` of LibriTTS): what the generator writes;
- ``expand_text(raw)`` (LJSpeech column 3, LibriTTS ``.normalized.txt``): numbers and abbreviations written
  out as words, case and punctuation kept ("Mr. Smith paid $3.50." -> "Mister Smith paid three dollars and
  fifty cents."). This is also the text the synthesizers read, so the audio says exactly these words
  whatever each engine's own number reader would have done;
- ``normalize_text(raw)`` (the ASR transcript): the expanded words, lowercase, only ``ENGLISH_CHARS``
  (letters, apostrophe, space), single spaces ("mister smith paid three dollars and fifty cents").

Numbers are read the American way without "and" (105 -> "one hundred five"); four-digit numbers from 1100
to 2099 without a comma are years (1999 -> "nineteen ninety-nine", 2005 -> "two thousand five"); larger
counts take thousands separators (2,500) and are read as cardinals.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from dataclasses import dataclass

from aics.core.errors import UserError

ENGLISH_CHARS = " 'abcdefghijklmnopqrstuvwxyz"
"""The characters of ``normalize_text`` output (and so of ASR transcripts): space, apostrophe, a-z."""

MIN_VOCAB = 40  # open-class words the generator needs at least (a few of each class)
MIN_WORDS_LOW, MAX_WORDS_HIGH = 2, 80
ATTEMPTS = 400  # sentence drafts tried before a length range is declared unreachable

# ------------------------------------------------------------------------------------------------------------
# Number reading


def _words(text: str) -> list[str]:
    """The whitespace-separated words of a word-list string."""
    return text.split()


_ONES = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
)
_TENS = _words("_ _ twenty thirty forty fifty sixty seventy eighty ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_thousand(n: int) -> str:
    words = []
    if n >= 100:
        words.append(f"{_ONES[n // 100]} hundred")
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n:
        words.append(_ONES[n])
    return " ".join(words)


def cardinal(n: int) -> str:
    """``105`` -> "one hundred five", ``21`` -> "twenty-one", ``2500`` -> "two thousand five hundred"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 1000:
        return _below_thousand(n) if n else "zero"
    if n >= 1000 * 10**12:
        return " ".join(_ONES[int(d)] for d in str(n))  # too large to read as a quantity: digit by digit
    words = []
    for value, name in _SCALES:
        if n >= value:
            words.append(f"{_below_thousand(n // value)} {name}")
            n %= value
    if n:
        words.append(_below_thousand(n))
    return " ".join(words)


def ordinal(n: int) -> str:
    """``7`` -> "seventh", ``21`` -> "twenty-first", ``100`` -> "one hundredth"."""
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    stem, hyphen, unit = last.rpartition("-")
    if unit in _ORDINAL_WORDS:
        unit = _ORDINAL_WORDS[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return head + sep + stem + hyphen + unit


def year(n: int) -> str:
    """``1999`` -> "nineteen ninety-nine", ``1905`` -> "nineteen oh five", ``2000`` -> "two thousand",
    ``2005`` -> "two thousand five", ``2024`` -> "twenty twenty-four", ``1900`` -> "nineteen hundred"."""
    if n % 1000 == 0 or 2000 <= n < 2010 or not 1000 <= n < 10000:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {cardinal(low)}"
    return f"{cardinal(high)} {cardinal(low)}"


def _plural_number_word(words: str) -> str:
    """ "nineteen ninety" -> "nineteen nineties" (decades: the 1990s)."""
    head, sep, last = words.rpartition(" ")
    stem, hyphen, unit = last.rpartition("-")
    unit = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    return head + sep + stem + hyphen + unit


def _digits(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits)


def decimal(text: str) -> str:
    """``"3.5"`` -> "three point five", ``"0.75"`` -> "zero point seven five", ``"1,200"`` -> cardinal."""
    whole, _, frac = text.replace(",", "").partition(".")
    words = cardinal(int(whole or "0"))
    return f"{words} point {_digits(frac)}" if frac else words


_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence")}
_CURRENCIES["€"] = ("euro", "euros", "cent", "cents")


def money(symbol: str, amount: str, scale: str | None = None) -> str:
    """``("$", "3.50")`` -> "three dollars and fifty cents"; ``("$", "2.5", "million")`` -> "two point five
    million dollars"; ``("$", "0.99")`` -> "ninety-nine cents"."""
    one, many, cent, cents = _CURRENCIES[symbol]
    amount = amount.replace(",", "")
    if scale:
        return f"{decimal(amount)} {scale} {many}"
    whole, _, frac = amount.partition(".")
    units = int(whole or "0")
    if len(frac) != 2:  # "$3.5": not cents, read as a decimal amount
        return f"{decimal(amount)} {many}" if frac else f"{cardinal(units)} {one if units == 1 else many}"
    hundredths = int(frac)
    parts = []
    if units or not hundredths:
        parts.append(f"{cardinal(units)} {one if units == 1 else many}")
    if hundredths:
        parts.append(f"{cardinal(hundredths)} {cent if hundredths == 1 else cents}")
    return " and ".join(parts)


def clock_time(hours: int, minutes: int, suffixed: bool) -> str:
    """``(10, 30)`` -> "ten thirty", ``(7, 5)`` -> "seven oh five", ``(12, 0)`` -> "twelve o'clock" (just
    "twelve" when a.m./p.m. follows)."""
    if minutes == 0:
        return cardinal(hours) if suffixed else f"{cardinal(hours)} o'clock"
    if minutes < 10:
        return f"{cardinal(hours)} oh {cardinal(minutes)}"
    return f"{cardinal(hours)} {cardinal(minutes)}"


# ------------------------------------------------------------------------------------------------------------
# Expansion and normalisation

_UNITS = {
    "km": ("kilometer", "kilometers"),
    "kg": ("kilogram", "kilograms"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mph": ("mile per hour", "miles per hour"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
}
# Titles and other abbreviations that are always read the same way. "Dr." and "St." depend on the next word
# (Doctor Smith / Elm Drive, Saint Louis / Main Street) and are handled apart.
_ABBREVIATIONS = {
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Ms.": "Miz",
    "Prof.": "Professor",
    "Mt.": "Mount",
    "Jr.": "Junior",
    "Sr.": "Senior",
    "Capt.": "Captain",
    "Gen.": "General",
    "Lt.": "Lieutenant",
    "Sgt.": "Sergeant",
    "Rev.": "Reverend",
    "Ave.": "Avenue",
    "Rd.": "Road",
    "Blvd.": "Boulevard",
    "Co.": "Company",
    "Ltd.": "Limited",
    "Inc.": "Incorporated",
    "e.g.": "for example",
    "i.e.": "that is",
    "etc.": "et cetera",
    "vs.": "versus",
    "approx.": "approximately",
}
_NUM = r"\d{1,3}(?:,\d{3})+|\d+"  # 2,500 or 2500
_MONEY_RE = re.compile(rf"([$£€])({_NUM})(\.\d+)?(?:\s+(thousand|million|billion|trillion)\b)?")
_PERCENT_RE = re.compile(rf"({_NUM})(\.\d+)?\s?%")
_TIME_RE = re.compile(r"\b(\d{1,2}):([0-5]\d)\b(?=(\s*[ap]\.m\.)?)", re.IGNORECASE)
_ORDINAL_RE = re.compile(rf"\b({_NUM})(st|nd|rd|th)\b")
_DECADE_RE = re.compile(r"\b(1[1-9]\d0|20\d0)s\b")
_UNIT_RE = re.compile(rf"\b({_NUM})(\.\d+)?\s?({'|'.join(_UNITS)})\b")
_DECIMAL_RE = re.compile(rf"\b({_NUM})\.(\d+)\b")
_YEAR_RE = re.compile(r"\b(1[1-9]\d\d|20\d\d)\b")
_INTEGER_RE = re.compile(rf"\b({_NUM})\b")
_ABBREVIATION_RE = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True)) + r")"
)
_DR_ST_RE = re.compile(r"(?<![\w.])(Dr|St)\.(?=(\s+[A-Z])?)")
_INITIALISM_RE = re.compile(r"\b([a-z])\.([a-z])\.", re.IGNORECASE)  # a.m., p.m., U.S.


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _expand_abbreviation(match: re.Match) -> str:
    word = _ABBREVIATIONS[match.group(1)]
    # A sentence that ends in "etc." keeps its full stop once the abbreviation's dot is gone.
    rest = match.string[match.end() :]
    return word + "." if not rest.strip() or rest.lstrip()[:1] in ('"', ")") else word


def _expand_dr_st(match: re.Match) -> str:
    before_name = match.group(2) is not None
    word = {"Dr": ("Drive", "Doctor"), "St": ("Street", "Saint")}[match.group(1)][before_name]
    rest = match.string[match.end() :]
    return word + "." if not rest.strip() else word


def expand_text(raw: str) -> str:
    """Numbers, money, percentages, times, ordinals, measures and abbreviations written out as words; case,
    punctuation and everything else kept (the LJSpeech / LibriTTS "normalized" text, and what the speech
    synthesizers read)."""
    text = unicodedata.normalize("NFC", raw)
    text = text.replace("&", " and ")
    text = _MONEY_RE.sub(lambda m: money(m.group(1), m.group(2) + (m.group(3) or ""), m.group(4)), text)
    text = _PERCENT_RE.sub(lambda m: decimal(m.group(1) + (m.group(2) or "")) + " percent", text)

    def time(m: re.Match) -> str:
        hours, minutes = int(m.group(1)), int(m.group(2))
        return clock_time(hours, minutes, m.group(3) is not None) if hours < 25 else m.group(0)

    text = _TIME_RE.sub(time, text)
    text = _ORDINAL_RE.sub(lambda m: ordinal(_int(m.group(1))), text)
    text = _DECADE_RE.sub(lambda m: _plural_number_word(year(int(m.group(1)))), text)

    def measure(m: re.Match) -> str:
        one, many = _UNITS[m.group(3)]
        number = m.group(1) + (m.group(2) or "")
        return f"{decimal(number)} {one if number == '1' else many}"

    text = _UNIT_RE.sub(measure, text)
    text = _DECIMAL_RE.sub(lambda m: decimal(f"{m.group(1)}.{m.group(2)}"), text)
    text = _YEAR_RE.sub(lambda m: year(int(m.group(1))), text)
    text = _INTEGER_RE.sub(lambda m: cardinal(_int(m.group(1))), text)
    text = _ABBREVIATION_RE.sub(_expand_abbreviation, text)
    text = _DR_ST_RE.sub(_expand_dr_st, text)
    return " ".join(text.split())


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_NOT_TRANSCRIPT = re.compile(r"[^a-z' ]+")
_STRAY_APOSTROPHE = re.compile(r"(?<![a-z])'|'(?![a-z])(?<!s')")


def normalize_text(raw: str) -> str:
    """The ASR transcript of ``raw``: ``expand_text``, lowercased, initialisms split into letters ("a.m." ->
    "a m"), hyphens and other punctuation turned into spaces, apostrophes kept inside words ("didn't") and
    after a plural s ("the boys' kite"), accents dropped; only ``ENGLISH_CHARS``, single spaces."""
    text = expand_text(raw).translate(_APOSTROPHES)
    text = _INITIALISM_RE.sub(r" \1 \2 ", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = _NOT_TRANSCRIPT.sub(" ", text)
    text = _STRAY_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def word_count(raw: str) -> int:
    """Spoken words of ``raw`` (words of its transcript)."""
    return len(normalize_text(raw).split())


# ------------------------------------------------------------------------------------------------------------
# The vocabulary. Real, common English words (all in the CMU pronouncing dictionary the synthesizers use),
# most frequent first within each class, so that a smaller ``vocab_size`` keeps the everyday words.

NOUNS = _words(
    """
time day year way thing man woman child house car book friend family school city door room water hand
eye letter table chair window garden street river road tree dog cat bird horse cow sheep fish apple bread
cake box bag hat coat shoe shirt dress cup plate bottle glass knife spoon fork bed lamp clock phone computer
picture song story game ball ship boat train plane bus bike truck station office shop store market bank
church hospital library museum park bridge tower castle farm field forest hill mountain lake island beach
village town country kitchen window wall floor roof stair corner box key ticket map gift letter paper pen
pencil desk board page word name question answer idea plan problem reason result fact rule law team group
company party meeting dinner lunch breakfast meal egg cheese butter milk tea coffee juice soup salad sugar
salt pepper rice potato tomato onion carrot orange banana lemon grape cherry peach pear melon cookie pie
sandwich pizza candle blanket pillow towel basket bucket brush comb mirror camera radio piano guitar drum
violin flute trumpet engine wheel tire bell button rope chain wire pipe nail hammer saw ladder shovel tool
flower rose leaf branch root seed grass stone rock sand cloud rain snow wind storm sun moon star sky ocean
wave shore cliff valley desert cave path trail fence gate barn yard pond stream well mill factory school
college student teacher doctor nurse farmer driver pilot captain sailor soldier artist writer singer dancer
painter baker cook waiter lawyer judge officer banker clerk manager worker builder hunter fisherman
gardener neighbor stranger visitor guest king queen prince princess boy girl baby brother sister mother
father uncle aunt cousin son daughter husband wife parent grandmother grandfather lady gentleman crowd
audience army police player coach captain leader member owner partner client customer passenger tourist
scientist engineer professor chemist doctor dentist pilot reporter editor author poet actor musician
president minister mayor governor senator chief clerk secretary assistant guard servant chef
animal lion tiger bear wolf fox rabbit mouse rat squirrel deer goat pig chicken duck goose turkey owl eagle
hawk crow sparrow parrot swan frog snake turtle lizard whale dolphin shark crab spider bee ant butterfly
monkey elephant giraffe zebra camel kangaroo penguin donkey puppy kitten pony
morning evening night afternoon week month season summer winter spring autumn holiday weekend birthday
minute hour moment century decade
window curtain carpet sofa cupboard drawer shelf oven stove fridge sink bath shower toilet garage cellar
attic hallway bedroom balcony porch chimney
jacket sweater skirt scarf glove sock boot belt pocket collar sleeve ring necklace watch wallet purse
umbrella suitcase backpack envelope parcel package stamp note card diary novel magazine newspaper poem
recipe menu bill receipt coin dollar penny check account price cost wage salary tax budget loan debt
bottle jar can tin barrel tank pot pan kettle bowl tray mug teapot jug
engine motor battery machine device tool screen keyboard printer cable signal network message email
photo video film movie show concert festival contest race match prize medal trophy goal score record
lesson class course exam test grade subject topic chapter article report speech lecture
island harbor port airport runway highway tunnel canal dam lighthouse palace temple cathedral chapel
theater cinema restaurant cafe hotel bakery pharmacy prison court stadium gym pool garden zoo
apartment cottage cabin tent hut shed warehouse laboratory studio workshop
color shape size weight height length distance speed number amount total half piece part side edge
top bottom center surface line circle square triangle pattern
voice sound noise music tune rhythm silence echo whistle
fire smoke flame heat light shadow darkness
journey trip voyage flight walk ride visit adventure mission
army battle war peace victory treaty border nation empire colony kingdom republic
doctor patient illness fever cough cold headache medicine pill bandage
truth secret promise mistake lie joke rumor warning advice opinion decision choice chance risk danger
habit hobby skill talent dream wish hope fear joy anger pride
horse saddle wagon carriage cart sled
ax arrow sword shield helmet armor cannon rifle
pearl diamond gold silver copper iron steel wood glass plastic cotton wool silk leather
fountain statue monument garden hedge bush vine
student graduate volunteer champion hero villain giant dwarf wizard witch ghost dragon
pencil crayon eraser ruler notebook folder calendar schedule
acorn album alarm alley anchor ankle antenna apron arch arm attic aunt avenue award badge bakery balloon
bandage banner barber basement bay beard bench berry blade blossom blouse bone bonnet boot border boulder
bow bracelet brick bride broom bubble buckle bud bull bundle bunny cabbage cactus calf canoe canyon cap
capital carpenter cart castle cattle ceiling cellar chain chalk champion channel chapter chest chin
circus clay claw clerk cloak closet clover coach coast cobweb collar comet compass cone cork costume
couch county cradle crane crater creek cricket crown cushion dagger daisy deck den diamond dime dish
ditch dock doll dome dough dragon drawer drill drop duck dune eagle elbow elf emerald engine fan feather
ferry fiddle finger flag flask fleet flood flour fog fountain frame freezer fruit fur gadget galaxy
garlic gem glacier globe glove goat gown grain grove gull gutter hammock handle harp hay helmet herd
hive hook hoop horn hose hut igloo inn insect ivy jewel jungle kettle kite knee knot label lace lamb lane
lantern lap lawn leash lemon lens lettuce lid lily limb lobster locket log lumber magnet mailbox mango
mansion maple marble mast mattress meadow medal mitten mole monument mop moss moth mule mushroom nest
net nickel oak oar orchard ostrich otter owl paddle pail palm pancake panther parade pasture patch paw
pea peanut pebble pedal pelican penguin pier pigeon pine pit plank platform plum pocket pole porch
pot pouch puddle pump pumpkin puppet quilt rabbit raft rail rainbow raincoat rake ranch raven reef
ribbon rifle rim robe robin rocket roller rooster ruby rug sack saddle sail saucer scarecrow scooter
seal shawl shell shelter shepherd shrub skate skeleton skull sleeve slipper snail sofa spade sponge
spoon stable stage stamp statue stem stool strap straw string submarine suit swan sweater switch
tablet tack tail tanker tassel teacup telescope thimble thorn thread throne thumb tiger toad toast
toe tomb tongue torch tortoise tractor trail trap tray trolley trunk tub tulip tunnel turnip twig
valley vase vest villa violet volcano wagon walnut wand wardrobe wasp weasel well whale wheat whip
wig windmill wing wolf worm wreath yacht yard
"""
)

IRREGULAR_PLURALS = {
    "man": "men",
    "woman": "women",
    "child": "children",
    "foot": "feet",
    "tooth": "teeth",
    "mouse": "mice",
    "goose": "geese",
    "sheep": "sheep",
    "fish": "fish",
    "deer": "deer",
    "knife": "knives",
    "leaf": "leaves",
    "wife": "wives",
    "wolf": "wolves",
    "shelf": "shelves",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "hero": "heroes",
    "fisherman": "fishermen",
    "gentleman": "gentlemen",
    "dwarf": "dwarfs",
    "echo": "echoes",
    "ox": "oxen",
    "ax": "axes",
    "series": "series",
    "thief": "thieves",
    "life": "lives",
    "half": "halves",
    "loaf": "loaves",
    "scarf": "scarves",
    "calf": "calves",
    "elf": "elves",
    "hoof": "hooves",
    "volcano": "volcanoes",
    "cattle": "cattle",
}

# Mass nouns: used in the singular only ("some milk", never "three milks").
UNCOUNTABLE = frozenset(
    _words(
        """
water bread cheese butter milk tea coffee juice soup sugar salt pepper rice sand rain snow police
music silence smoke heat darkness advice peace truth anger pride joy fear gold silver copper iron steel
wood plastic cotton wool silk leather armor medicine flour fog hay clay chalk lace lumber moss straw wheat
garlic lettuce dough fur toast cattle
"""
    )
)

# Transitive verbs (take an object). "base" is regular; "base:past" or "base:past:participle" irregular or
# with a doubled consonant.
VERBS = _words(
    """
see:saw:seen find:found take:took:taken make:made bring:brought buy:bought sell:sold carry open close
watch help visit paint draw:drew:drawn build:built clean wash fix move push pull lift drop:dropped
hold:held keep:kept leave:left lose:lost love like need want use call ask answer follow miss meet:met
read:read write:wrote:written send:sent give:gave:given show:showed:shown tell:told teach:taught
borrow lend:lent pack fill empty cook bake:baked boil fry order pay:paid share borrow count check
catch:caught throw:threw:thrown kick hit:hit cut:cut break:broke:broken repair paint sign post mail
deliver collect gather pick choose:chose:chosen select prefer:preferred enjoy study learn remember
forget:forgot:forgotten
notice hear:heard smell touch taste feel:felt guard protect save rescue warn greet thank invite welcome
join lead:led follow chase hunt feed:fed wake:woke:woken dress hide:hid:hidden seek:sought hang:hung
wrap tie:tied fold stir:stirred pour spill mix measure weigh test explain describe discuss mention
admire praise blame trust doubt fear hate respect remember imagine expect accept refuse allow
offer promise prepare arrange plan:planned design invent discover explore search examine inspect
measure record film photograph print copy scan type translate finish start begin:began:begun stop:stopped
drive:drove:driven ride:rode:ridden fly:flew:flown sail row steer park tow
plant grow:grew:grown water cut harvest pick dig:dug bury climb cross pass reach enter leave
answer ring:rang:rung shake:shook:shaken wave kiss hug:hugged push press squeeze shut:shut lock unlock
light:lit burn heat warm cool freeze:froze:frozen melt pour serve eat:ate:eaten drink:drank:drunk
win:won beat:beat:beaten lose play sing:sang:sung hum:hummed whistle strike:struck
steal:stole:stolen rob:robbed borrow return replace remove add include support carry
attack defend capture release free hire fire pay train coach guide
adopt adjust alert announce annoy applaud approve assist attach avoid bathe bend:bent bless boost
borrow bounce brush bump calm cancel:canceled carve celebrate chew clap:clapped comfort compare
confuse connect consider cover crack crush cure decorate delay deliver destroy divide drag:dragged
earn encourage entertain escape fasten fetch flip:flipped float flood fold frighten grab:grabbed grip:gripped
guess handle harm hook improve inform injure interrupt iron juggle label launch level:leveled lick
load manage mark marry melt mend milk nail note obey observe obtain own pat:patted peel pinch
place please plug:plugged polish pop:popped possess preserve produce protect punch punish puncture raise
recognize reduce reject relax remind rent repeat report rescue reward rinse rub:rubbed ruin rush
scare scatter scold scrape scratch screw scrub:scrubbed seal sew:sewed:sewn shelter shock slap:slapped
slide:slid spare spray squash stack stamp staple store strap:strapped stretch suggest supply surprise
suspect swap:swapped tap:tapped tease thaw tickle tip:tipped toss trace trade transport trap:trapped
treat trim:trimmed tug:tugged turn twist untie unpack unwrap upset:upset vanish visit weave:wove:woven
wipe wreck zip:zipped
"""
)

INTRANSITIVE_VERBS = _words(
    """
arrive leave:left wait sleep:slept smile laugh cry:cried sing:sang:sung dance run:ran:run walk swim:swam:swum
jump shout whisper talk speak:spoke:spoken listen rest work travel:traveled return stay fall:fell:fallen
rise:rose:risen sit:sat stand:stood kneel:knelt agree argue complain apologize hurry:hurried relax
breathe cough sneeze yawn shiver tremble wander hesitate pray vote retire fail succeed begin:began:begun
continue disappear appear vanish grow:grew:grown shine:shone glow rain snow freeze:froze:frozen
improve recover explode land depart settle survive disagree knock blink nod:nodded
bark bloom blush bow crawl creep:crept dive:dove drift drown faint float frown gasp giggle glide
groan growl hop:hopped howl kneel:knelt limp march mumble pause peek pout quarrel rattle roar roam
scream shrug:shrugged sigh skip:skipped slip:slipped sob:sobbed sparkle splash sprint squeak stumble
stutter sulk sway swing:swung tiptoe trot:trotted wink wobble wriggle
"""
)

ADJECTIVES = _words(
    """
good new old great big small large little long short high low young early late important different
happy sad angry calm quiet loud bright dark light heavy hot cold warm cool wet dry clean dirty empty full
fast slow quick easy hard soft strong weak rich poor cheap expensive beautiful ugly pretty handsome
brave clever wise foolish kind cruel polite rude honest proud shy lazy busy tired hungry thirsty sick
healthy strange famous common rare simple plain fancy modern ancient fresh ripe sweet sour bitter salty
spicy tasty delicious smooth rough sharp dull thick thin narrow wide deep shallow flat round square
straight curly tall tiny huge enormous gentle fierce wild tame noisy silent safe dangerous careful
careless curious nervous excited bored lonely friendly cheerful gloomy lucky unlucky useful useless
red blue green yellow orange purple pink brown black white gray golden silver
wooden metal plastic glass paper cotton woolen leather stone iron
early late daily weekly monthly yearly final first last next previous main central local foreign
national public private secret open closed free busy ready certain sure perfect terrible awful wonderful
excellent horrible pleasant lovely charming elegant graceful clumsy awkward
frozen broken hidden lost stolen forgotten painted wrapped
northern southern eastern western coastal rural urban royal
patient generous selfish jealous grateful cautious eager anxious serious funny silly
ample bald bare blank bold brief broad bumpy chilly chubby cloudy cozy crisp crooked cruel dainty damp
dim distant dizzy drowsy dusty elderly empty faint fair faithful fancy fearless filthy flimsy fluffy
foggy fragile frail frantic frosty furry fuzzy giant gigantic glad glossy gorgeous grand greasy grumpy
hairy hasty hollow humble icy itchy jolly juicy keen lame lean little lively loose lucky magic majestic
massive mighty misty moist muddy narrow neat nimble noble nosy odd oily orderly pale peaceful petite
plump polished precious prickly puny quaint ragged rapid rusty sandy scary shabby shaggy shiny skinny
sleepy slim slippery sloppy small smoky snowy soggy solid sparkling splendid spotless steady steep
sticky stiff stormy stout striped sturdy sunny swift tender tidy timid tough tricky vast velvet vivid
wealthy weary windy witty wobbly wrinkled young zealous
"""
)

ADVERBS = _words(
    """
quickly slowly carefully quietly loudly happily sadly easily gently suddenly finally rarely often
always never sometimes usually seldom early late soon today tomorrow yesterday again already still
almost nearly really very quite rather fairly truly simply clearly proudly bravely calmly eagerly
politely kindly badly well honestly secretly warmly cheerfully patiently nervously anxiously
angrily awkwardly boldly briskly busily carelessly casually curiously deeply doubtfully eagerly
elegantly fiercely firmly fondly foolishly gladly gracefully greedily hastily heavily hungrily
innocently joyfully lazily lightly loosely madly merrily neatly openly playfully poorly promptly
quickly rapidly roughly rudely safely sharply shyly silently sleepily smoothly softly solemnly
speedily steadily sternly swiftly tenderly tightly wearily wildly wisely
"""
)
MANNER_ADVERBS = [w for w in ADVERBS if w.endswith("ly") and w not in ("early", "nearly", "rarely")]

MALE_NAMES = _words(
    """
James John Robert Michael William David Richard Joseph Thomas Charles Daniel Matthew Anthony Mark Paul
Steven Andrew Kenneth George Joshua Kevin Brian Edward Ronald Timothy Jason Jeffrey Ryan Jacob Gary
Nicholas Eric Stephen Jonathan Larry Justin Scott Frank Brandon Raymond Gregory Samuel Benjamin Patrick
Jack Henry Walter Peter Harold Douglas Arthur Carl Roger Keith Jeremy Lawrence Sean Albert Joe Alan
Philip Louis Oliver Harry Victor Martin Simon Hugo Leo Oscar Felix Max Ivan Adam Noah Ethan Lucas
"""
)
FEMALE_NAMES = _words(
    """
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Nancy Lisa Betty Margaret Sandra
Ashley Kimberly Emily Donna Michelle Dorothy Carol Amanda Melissa Deborah Stephanie Rebecca Laura Sharon
Cynthia Kathleen Amy Shirley Angela Helen Anna Brenda Pamela Nicole Emma Samantha Katherine Christine
Debra Rachel Catherine Carolyn Janet Ruth Maria Heather Diane Virginia Julie Joyce Victoria Olivia Kelly
Christina Lauren Joan Evelyn Judith Megan Cheryl Andrea Hannah Martha Jacqueline Frances Gloria Ann
Alice Julia Grace Rose Lily Sophie Clara Lucy Ella Nora Eva Irene
"""
)
SURNAMES = _words(
    """
Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson
Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green Baker Adams Nelson
Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker Collins Edwards Stewart Morris Murphy
Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks
Bennett Gray James Hughes Price Sanders Myers Long Ross Foster Powell Jenkins Perry Russell Sullivan
Fisher Hayes Ford Graham Wallace West Cole Hunt Palmer Black Stone Lane Porter Hudson Mason Hamilton
Harper Fletcher Chapman Marshall Grant Webb Tucker Knight Holmes Dixon Hunter Spencer Warren Fox Rose
Lawrence Wells Hart Barnes Douglas Burke Fuller Gardner Hale Hicks Lowe Mills Nash Payne Rhodes Shaw
Walsh Weaver Bishop Boyd Carr Dean Fowler Garner Gibbs Hardy Hopkins Howell Lambert Little Lyons Mann
Norris Owens Pratt Quinn Reeves Sharp Stanley Steele Todd Vaughn Wade Watts Wheeler Wolfe
"""
)
CITIES = _words(
    """
London Paris Boston Chicago Denver Dallas Houston Seattle Portland Phoenix Atlanta Miami Detroit Memphis
Nashville Austin Oakland Berlin Madrid Rome Vienna Prague Dublin Lisbon Athens Moscow Cairo Tokyo Sydney
Toronto Montreal Vancouver Chicago Baltimore Philadelphia Pittsburgh Cleveland Cincinnati Milwaukee
Minneapolis Omaha Albany Richmond Charleston Savannah Orlando Tampa Sacramento Berkeley Oxford Cambridge
Edinburgh Glasgow Manchester Liverpool Bristol York Brighton Venice Florence Naples Geneva Zurich
Amsterdam Brussels Stockholm Oslo Copenhagen Helsinki Warsaw Budapest Hamburg Munich Lyon Marseille
"""
)
SAINT_CITIES = ["Louis", "Paul", "Augustine", "Petersburg", "Albans", "Andrews"]
MOUNTAINS = ["Everest", "Hood", "Rainier", "Vernon", "Shasta", "Washington", "Whitney"]
STREET_NAMES = _words(
    """
Main Oak Pine Maple Cedar Elm Park Lake Hill Church Mill River Spring Market Water Bridge High Union
Walnut Cherry Chestnut Willow Washington Lincoln Jefferson Franklin Madison Jackson Center Grove Forest
"""
)
DAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
MONTHS = _words("January February March April May June July August September October November December")

# People nouns (can be subjects that act) are a subset of NOUNS; used for "the <profession>" subjects.
PEOPLE = _words(
    """
man woman child boy girl baby friend teacher doctor nurse farmer driver pilot captain sailor soldier artist
writer singer dancer painter baker cook waiter lawyer judge officer banker clerk manager worker builder
hunter fisherman gardener neighbor stranger visitor guest king queen prince princess student mother father
uncle aunt cousin brother sister son daughter husband wife lady gentleman coach leader owner passenger
tourist scientist engineer professor dentist reporter editor author poet actor musician mayor governor
chief secretary assistant guard chef volunteer champion
"""
)
# Containers, places and things that fit common templates.
PLACES = _words(
    """
garden kitchen station office shop market bank church hospital library museum park bridge tower castle
farm field forest village town school house room hall theater cinema restaurant cafe hotel bakery harbor
airport stadium zoo cottage cabin barn yard beach island valley
"""
)
RACES = _words("race contest marathon tournament competition match")

_OPEN_CLASSES = (
    "nouns",
    "verbs",
    "intransitive",
    "adjectives",
    "adverbs",
    "male",
    "female",
    "surnames",
    "cities",
    "streets",
)


def _unique(words: list[str]) -> list[str]:
    return list(dict.fromkeys(words))


# ------------------------------------------------------------------------------------------------------------
# Inflection

_VOWELS = "aeiou"


def plural(noun: str) -> str:
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in _VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


@dataclass(frozen=True)
class Verb:
    base: str
    third: str  # he <third>
    past: str
    participle: str
    ing: str


_DOUBLING_VERBS = frozenset(
    ("begin", "forget", "prefer", "admit", "occur", "permit", "regret", "submit", "unwrap", "upset", "equip")
)
_CVC_END = re.compile(r"(?:^|[^aeiou])[aeiou][^aeiouwxy]$")


def _doubles_last_consonant(base: str) -> bool:
    """stop -> stopped / stopping: one-syllable verbs ending consonant-vowel-consonant (and a few
    end-stressed longer ones)."""
    if base in _DOUBLING_VERBS:
        return True
    return len(re.findall(r"[aeiouy]+", base)) == 1 and bool(_CVC_END.search(base))


def make_verb(entry: str) -> Verb:
    """A verb from a ``VERBS`` entry: ``"walk"``, ``"stop:stopped"``, ``"take:took:taken"``."""
    base, *forms = entry.split(":")
    doubles = _doubles_last_consonant(base)
    if base.endswith(("s", "x", "z", "ch", "sh", "o")):
        third = base + "es"
    elif base.endswith("y") and base[-2] not in _VOWELS:
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    if forms:
        past = forms[0]
    elif base.endswith("e"):
        past = base + "d"
    elif base.endswith("y") and base[-2] not in _VOWELS:
        past = base[:-1] + "ied"
    elif doubles:
        past = base + base[-1] + "ed"
    else:
        past = base + "ed"
    participle = forms[1] if len(forms) > 1 else past
    if doubles:
        ing = base + base[-1] + "ing"
    elif base.endswith("ie"):
        ing = base[:-2] + "ying"
    elif base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        ing = base[:-1] + "ing"
    else:
        ing = base + "ing"
    return Verb(base, third, past, participle, ing)


def _unique_verbs(entries: list[str]) -> list[Verb]:
    """One verb per base form, the first entry winning (so "leave:left" is not undone by a later "leave")."""
    verbs: dict[str, Verb] = {}
    for entry in entries:
        verb = make_verb(entry)
        verbs.setdefault(verb.base, verb)
    return list(verbs.values())


_AN_EXCEPTIONS = ("uni", "use", "usu", "uti", "eu", "ewe", "one", "once")
_SILENT_H = ("hour", "honest", "honor", "heir")


def article(word: str) -> str:
    """ "a" or "an" before ``word`` (by its first sound, for the words this module uses)."""
    w = word.lower()
    if w.startswith(_SILENT_H):
        return "an"
    if w[:1] in _VOWELS and not w.startswith(_AN_EXCEPTIONS):
        return "an"
    return "a"


# ------------------------------------------------------------------------------------------------------------
# The generator


@dataclass(frozen=True)
class Lexicon:
    nouns: list[str]
    verbs: list[Verb]
    intransitive: list[Verb]
    adjectives: list[str]
    adverbs: list[str]
    male: list[str]
    female: list[str]
    surnames: list[str]
    cities: list[str]
    streets: list[str]

    @property
    def size(self) -> int:
        return sum(len(getattr(self, name)) for name in _OPEN_CLASSES)

    @functools.cached_property
    def countable(self) -> list[str]:
        return [n for n in self.nouns if n not in UNCOUNTABLE]

    @functools.cached_property
    def people(self) -> list[str]:
        return [n for n in PEOPLE if n in set(self.nouns)] or self.countable

    @functools.cached_property
    def places(self) -> list[str]:
        return [n for n in PLACES if n in set(self.nouns)] or self.countable


def full_lexicon() -> Lexicon:
    return Lexicon(
        nouns=_unique(NOUNS),
        verbs=_unique_verbs(VERBS),
        intransitive=_unique_verbs(INTRANSITIVE_VERBS),
        adjectives=_unique(ADJECTIVES),
        adverbs=_unique(MANNER_ADVERBS),
        male=_unique(MALE_NAMES),
        female=_unique(FEMALE_NAMES),
        surnames=_unique(SURNAMES),
        cities=_unique(CITIES),
        streets=_unique(STREET_NAMES),
    )


def limited_lexicon(vocab_size: int | None) -> Lexicon:
    """The first words of each class, in proportion to its size, ``vocab_size`` open-class words in all
    (at least 2 of each); ``None`` or a size beyond the full lexicon: everything."""
    full = full_lexicon()
    if vocab_size is None or vocab_size >= full.size:
        return full
    share = vocab_size / full.size
    kept = {name: getattr(full, name) for name in _OPEN_CLASSES}
    counts = {name: max(2, int(len(words) * share)) for name, words in kept.items()}
    # hand the rounding remainder to the largest classes, one word each
    for name in sorted(kept, key=lambda n: -len(kept[n])):
        if sum(counts.values()) >= vocab_size:
            break
        counts[name] = min(len(kept[name]), counts[name] + 1)
    return Lexicon(**{name: words[: counts[name]] for name, words in kept.items()})


@dataclass(frozen=True)
class _Subject:
    text: str
    person: str  # "1s", "2", "3s", "1p", "3p"
    pronoun: str  # the pronoun a tag question uses: he, she, it, they, I, you, we

    @property
    def plural(self) -> bool:
        return self.person in ("2", "1p", "3p")


_BE_PRESENT = {"1s": "am", "2": "are", "3s": "is", "1p": "are", "3p": "are"}
_BE_PAST = {"1s": "was", "2": "were", "3s": "was", "1p": "were", "3p": "were"}
_PRONOUNS = (
    _Subject("I", "1s", "I"),
    _Subject("you", "2", "you"),
    _Subject("he", "3s", "he"),
    _Subject("she", "3s", "she"),
    _Subject("we", "1p", "we"),
    _Subject("they", "3p", "they"),
)
_CONTRACT = {"am": "'m", "are": "'re", "is": "'s", "will": "'ll", "have": "'ve", "has": "'s", "would": "'d"}
_NEGATIVE = {
    "is": "isn't",
    "are": "aren't",
    "was": "wasn't",
    "were": "weren't",
    "do": "don't",
    "does": "doesn't",
    "did": "didn't",
    "will": "won't",
    "can": "can't",
    "could": "couldn't",
    "should": "shouldn't",
    "would": "wouldn't",
    "has": "hasn't",
    "have": "haven't",
    "must": "mustn't",
}
_MODALS = ("can", "could", "should", "would", "might", "must", "will")
_TITLES = ("Mr.", "Mrs.", "Dr.", "Prof.", "Capt.")
_PREPOSITIONS = ("in", "near", "behind", "beside", "under", "outside", "inside", "across", "along", "past")
_CONJUNCTIONS = ("and", "but", "so", "because", "while", "although", "when", "after", "before", "until")
_SAY = ("said", "asked", "replied", "whispered", "shouted", "explained", "added")
_DETERMINERS_SG = ("the", "the", "the", "a", "a", "this", "that", "my", "your", "his", "her", "our", "their")
_DETERMINERS_PL = ("the", "the", "these", "those", "some", "many", "several", "my", "our", "their", "all the")
_TIME_WORDS = ("yesterday", "today", "tomorrow", "last night", "this morning", "every evening", "at noon")


class _Draw:
    """Seeded choices for one sentence."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def pick(self, options):
        return options[self.rng.randrange(len(options))]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high]."""
        return self.rng.randint(low, high)

    def weighted(self, options: dict):
        keys = list(options)
        return self.rng.choices(keys, weights=[options[k] for k in keys])[0]


def derive_seed(seed: int, stream: int, index: int) -> int:
    """A 64-bit seed for item ``index`` of ``stream`` under ``seed`` (splitmix-style mixing: independent,
    reproducible streams)."""
    x = (seed * 0x9E3779B97F4A7C15 + stream * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 31
    x = (x * 0xD6E8FEB86659FD93) & (2**64 - 1)
    return x ^ (x >> 32)


def _ordinal_digits(n: int) -> str:
    """``21`` -> "21st", ``12`` -> "12th"."""
    suffix = "th" if 10 <= n % 100 < 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _capitalize(text: str) -> str:
    """Upper-case the first letter, unless the text starts with a number ("12 dogs barked.")."""
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
        if ch.isdigit() or ch in "$£€":
            break
    return text


def _join_list(items: list[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


class SentenceGenerator:
    """Seeded English sentences: ``sentence(index, stream)`` depends only on (seed, stream, index).

    ``vocab_size`` limits the open-class words (nouns, verbs, adjectives, adverbs, names, places; function
    words and number words come on top); ``min_words`` / ``max_words`` bound the spoken words of a sentence.
    """

    def __init__(self, seed: int = 0, vocab_size: int | None = None, min_words: int = 3, max_words: int = 24):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UserError(f"seed {seed!r}: must be a whole number, at least 0")
        if vocab_size is not None and (
            isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB
        ):
            raise UserError(f"vocab_size {vocab_size!r}: must be a whole number, at least {MIN_VOCAB}")
        for name, value in (("min_words", min_words), ("max_words", max_words)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"{name} {value!r}: must be a whole number")
        if not MIN_WORDS_LOW <= min_words <= max_words <= MAX_WORDS_HIGH:
            raise UserError(
                f"sentence length {min_words}..{max_words} words: need "
                f"{MIN_WORDS_LOW} <= min_words <= max_words <= {MAX_WORDS_HIGH}"
            )
        self.seed, self.vocab_size = seed, vocab_size
        self.min_words, self.max_words = min_words, max_words
        self.lexicon = limited_lexicon(vocab_size)

    def settings(self) -> dict:
        return {
            "seed": self.seed,
            "vocab_size": self.vocab_size,
            "open_class_words": self.lexicon.size,
            "min_words": self.min_words,
            "max_words": self.max_words,
        }

    def sentence(self, index: int, stream: int = 0) -> str:
        """The raw text of sentence ``index`` of ``stream``."""
        draw = _Draw(derive_seed(self.seed, stream, index))
        best, best_gap = "", None
        for _ in range(ATTEMPTS):
            target = draw.integer(self.min_words, self.max_words)
            text = _Builder(self.lexicon, draw).sentence(target)
            n = word_count(text)
            if self.min_words <= n <= self.max_words:
                return text
            gap = min(abs(n - self.min_words), abs(n - self.max_words))
            if best_gap is None or gap < best_gap:
                best, best_gap = text, gap
        raise UserError(
            f"no sentence of {self.min_words} to {self.max_words} words in {ATTEMPTS} drafts (closest: "
            f"{best!r}); widen the length range"
        )

    def sentences(self, n: int, stream: int = 0, start: int = 0) -> list[str]:
        return [self.sentence(i, stream) for i in range(start, start + n)]


class _Builder:
    """The grammar: one instance builds one sentence from one ``_Draw``."""

    def __init__(self, lex: Lexicon, draw: _Draw):
        self.lex, self.d = lex, draw

    # ---- noun phrases ----

    def noun(self, countable: bool = False) -> str:
        nouns = self.lex.countable if countable else self.lex.nouns
        return self.d.pick(nouns or self.lex.nouns)

    def people_noun(self) -> str:
        return self.d.pick(self.lex.people)

    def place_noun(self) -> str:
        return self.d.pick(self.lex.places)

    def adjective(self) -> str:
        return self.d.pick(self.lex.adjectives)

    def count(self) -> str:
        """A count of two or more, as printed: small ones in words, larger in digits."""
        kind = self.d.weighted({"word": 4, "small": 4, "hundreds": 2, "thousands": 1})
        if kind == "word":
            return cardinal(self.d.integer(2, 9))
        if kind == "small":
            return str(self.d.integer(10, 99))
        if kind == "hundreds":
            return str(self.d.integer(100, 999))
        return f"{self.d.integer(1000, 250_000):,}"

    def np(self, plural_np: bool | None = None, det: str | None = None) -> str:
        """A noun phrase: determiner, maybe adjectives, noun."""
        if plural_np is None:
            plural_np = self.d.chance(0.3)
        words = []
        if self.d.chance(0.35):
            words.append(self.adjective())
            if self.d.chance(0.1):
                words.append(self.adjective())
        noun = self.noun(countable=plural_np)
        words.append(plural(noun) if plural_np else noun)
        if det is None:
            if plural_np:
                det = self.count() if self.d.chance(0.25) else self.d.pick(_DETERMINERS_PL)
            else:
                det = self.d.pick(_DETERMINERS_SG)
        if det == "a":
            det = "some" if noun in UNCOUNTABLE else article(words[0])
        return f"{det} {' '.join(words)}"

    def person_name(self) -> tuple[str, str]:
        """A name as printed, and its pronoun."""
        female = self.d.chance(0.5)
        first = self.d.pick(self.lex.female if female else self.lex.male)
        last = self.d.pick(self.lex.surnames)
        pronoun = "she" if female else "he"
        kind = self.d.weighted({"title": 4, "first": 3, "full": 2, "junior": 1})
        if kind == "title":
            title = self.d.pick(_TITLES)
            if title == "Mr.":
                pronoun = "he"
            elif title == "Mrs.":
                pronoun = "she"
            return f"{title} {last}", pronoun
        if kind == "first":
            return first, pronoun
        if kind == "junior":
            return f"{self.d.pick(self.lex.male)} {last} {self.d.pick(('Jr.', 'Sr.'))}", "he"
        return f"{first} {last}", pronoun

    def subject(self, agent: bool = False) -> _Subject:
        """Who or what a clause is about; an ``agent`` is a person (pronoun, name or people noun)."""
        kind = self.d.weighted({"pronoun": 3, "name": 3, "people": 3, "np": 0 if agent else 2})
        if kind == "pronoun":
            return self.d.pick(_PRONOUNS)
        if kind == "name":
            text, pronoun = self.person_name()
            return _Subject(text, "3s", pronoun)
        if kind == "people":
            noun = self.people_noun()
            if self.d.chance(0.3):
                return _Subject(f"the {plural(noun)}", "3p", "they")
            det = self.d.pick(("the", "the", "my", "our", "your", "a"))
            if det == "a":
                det = article(noun)
            pronoun = (
                "she" if noun in ("woman", "girl", "mother", "aunt", "sister", "wife", "queen") else "he"
            )
            return _Subject(f"{det} {noun}", "3s", pronoun)
        plural_np = self.d.chance(0.3)
        return _Subject(self.np(plural_np), "3p" if plural_np else "3s", "they" if plural_np else "it")

    def obj(self) -> str:
        kind = self.d.weighted({"np": 6, "name": 2, "pronoun": 1})
        if kind == "np":
            return self.np()
        if kind == "name":
            return self.person_name()[0]
        return self.d.pick(("him", "her", "them", "it", "us", "me"))

    def place(self) -> str:
        """Where something happens: a prepositional phrase."""
        kind = self.d.weighted({"np": 6, "city": 2, "street": 1, "saint": 1, "mount": 1})
        if kind == "np":
            return f"{self.d.pick(_PREPOSITIONS)} the {self.place_noun()}"
        if kind == "city":
            return f"in {self.d.pick(self.lex.cities)}"
        if kind == "street":
            suffix = self.d.pick(("St.", "Ave.", "Rd.", "Dr.", "Blvd."))
            return f"on {self.d.pick(self.lex.streets)} {suffix}"
        if kind == "saint":
            return f"in St. {self.d.pick(SAINT_CITIES)}"
        return f"near Mt. {self.d.pick(MOUNTAINS)}"

    def when(self) -> str:
        """A time adverbial, often with a number."""
        kind = self.d.weighted(
            {
                "word": 4,
                "day": 2,
                "month": 1,
                "year": 2,
                "decade": 1,
                "date": 2,
                "clock": 2,
                "ago": 1,
                "century": 1,
            }
        )
        d = self.d
        if kind == "word":
            return d.pick(_TIME_WORDS)
        if kind == "day":
            return d.pick(("on", "last", "next", "every")) + " " + d.pick(DAYS)
        if kind == "month":
            return d.pick(("in", "last", "next")) + " " + d.pick(MONTHS)
        if kind == "year":
            return f"in {d.integer(1800, 2030)}"
        if kind == "decade":
            return f"in the {d.integer(180, 202) * 10}s"
        if kind == "date":
            day = _ordinal_digits(d.integer(1, 28))
            if d.chance(0.5):
                return f"on {d.pick(MONTHS)} {day}"
            return f"on the {day} of {d.pick(MONTHS)}"
        if kind == "clock":
            return f"at {self.clock()}"
        if kind == "ago":
            return f"{self.count()} {d.pick(('days', 'weeks', 'months', 'years'))} ago"
        return f"in the {_ordinal_digits(d.integer(12, 21))} century"

    def clock(self) -> str:
        d = self.d
        hours = d.integer(1, 12)
        minutes = d.pick((0, 0, 15, 30, 45, d.integer(1, 59)))
        suffix = d.pick(("", "", " a.m.", " p.m."))
        if minutes == 0 and suffix and d.chance(0.5):
            return f"{hours}{suffix}"
        return f"{hours}:{minutes:02d}{suffix}"

    def money(self) -> str:
        d = self.d
        kind = d.weighted({"cents": 4, "dollars": 3, "large": 1, "million": 1})
        if kind == "cents":
            return f"${d.integer(0, 99)}.{d.integer(1, 99):02d}"
        if kind == "dollars":
            return f"${d.integer(1, 500)}"
        if kind == "large":
            return f"${d.integer(1000, 90_000):,}"
        return f"${d.pick((str(d.integer(1, 900)), f'{d.integer(1, 9)}.{d.integer(1, 9)}'))} million"

    def percent(self) -> str:
        if self.d.chance(0.2):
            return f"{self.d.integer(1, 99)}.{self.d.integer(1, 9)}%"
        return f"{self.d.integer(1, 99)}%"

    def measure(self) -> str:
        d = self.d
        unit = d.pick(("km", "kg", "miles", "meters", "cm", "mph"))
        amount = d.pick((str(d.integer(2, 99)), f"{d.integer(0, 20)}.{d.integer(1, 9)}", "1"))
        if amount == "1" and unit in ("miles", "meters"):
            unit = unit[:-1]
        return f"{amount} {unit}"

    # ---- verb phrases ----

    def verb_phrase(self, subj: _Subject, verb: Verb, negate: bool = False) -> tuple[str, str]:
        """``(subject and verb group, auxiliary for a tag question)``, e.g. ``("she didn't open", "did")``."""
        d = self.d
        tense = d.weighted({"past": 6, "present": 3, "future": 2, "progressive": 2, "perfect": 2, "modal": 2})
        pronoun_subject = subj in _PRONOUNS
        if tense in ("past", "present") and not negate:
            form = verb.past if tense == "past" else (verb.third if subj.person == "3s" else verb.base)
            aux = "did" if tense == "past" else ("does" if subj.person == "3s" else "do")
            return f"{subj.text} {form}", aux
        if tense == "past":
            aux, main = "did", verb.base
        elif tense == "present":
            aux, main = ("does" if subj.person == "3s" else "do"), verb.base
        elif tense == "future":
            aux, main = "will", verb.base
        elif tense == "progressive":
            aux, main = _BE_PRESENT[subj.person], verb.ing
        elif tense == "perfect":
            aux, main = ("has" if subj.person == "3s" else "have"), verb.participle
        else:
            aux, main = d.pick(_MODALS), verb.base
        tag_aux = aux
        if negate:
            if aux in _NEGATIVE and d.chance(0.6):
                group = f"{subj.text} {_NEGATIVE[aux]}"
            elif pronoun_subject and aux in _CONTRACT and d.chance(0.5):
                group = f"{subj.text}{_CONTRACT[aux]} not"
            else:
                group = f"{subj.text} {aux} not"
        elif pronoun_subject and aux in _CONTRACT and d.chance(0.5):
            group = f"{subj.text}{_CONTRACT[aux]}"
        else:
            group = f"{subj.text} {aux}"
        return f"{group} {main}", tag_aux

    def clause(self) -> tuple[str, _Subject, str | None, bool]:
        """A statement clause without final punctuation: ``(text, subject, auxiliary for a tag question or
        None, negated)``."""
        d = self.d
        negate = d.chance(0.15)
        kind = d.weighted({"transitive": 6, "intransitive": 2, "be": 2, "number": 4})
        subj = self.subject(agent=kind == "number" or (kind == "transitive" and d.chance(0.8)))
        if kind == "number":
            return self.number_clause(subj), subj, None, False
        if kind == "be":
            be = d.pick((_BE_PRESENT, _BE_PAST))[subj.person]
            neg = " not" if negate else ""
            complement = self.adjective()
            if d.chance(0.3):
                complement = f"{d.pick(('very', 'quite', 'rather', 'so', 'too'))} {complement}"
            elif d.chance(0.2):
                complement = f"{complement} and {self.adjective()}"
            return f"{subj.text} {be}{neg} {complement}", subj, be, negate
        if kind == "intransitive":
            group, aux = self.verb_phrase(subj, d.pick(self.lex.intransitive), negate)
        else:
            group, aux = self.verb_phrase(subj, d.pick(self.lex.verbs), negate)
            group += " " + self.obj()
        if d.chance(0.4):
            group += " " + self.place()
        if d.chance(0.2):
            group += " " + d.pick(self.lex.adverbs)
        if d.chance(0.25):
            group += " " + self.when()
        return group, subj, aux, negate

    def number_clause(self, subj: _Subject) -> str:
        d = self.d
        kind = d.weighted(
            {"money": 3, "percent": 2, "time": 2, "rank": 1, "measure": 2, "count": 2, "year": 1}
        )
        if kind == "money":
            verb = d.pick(("paid", "spent", "saved", "lost", "earned", "owed", "raised"))
            tail = d.pick(("", f" for {self.np(False)}", f" on {self.np(True)}", " last year", " in one day"))
            return f"{subj.text} {verb} {self.money()}{tail}"
        if kind == "percent":
            what = d.pick(("of the vote", "of the tickets", "of the money", "of the work", "of the land"))
            verb = d.pick(("won", "sold", "owned", "kept", "finished", "lost"))
            about = d.pick(("about ", "nearly ", "exactly ", "only ", ""))
            return f"{subj.text} {verb} {about}{self.percent()} {what}"
        if kind == "time":
            verb = d.pick(("arrived", "left", "called", "woke up", "went home", "finished lunch"))
            return f"{subj.text} {verb} at {self.clock()}"
        if kind == "rank":
            return f"{subj.text} finished {_ordinal_digits(d.integer(1, 120))} in the {d.pick(RACES)}"
        if kind == "measure":
            verb = d.pick(("walked", "ran", "carried", "drove", "lifted", "measured"))
            tail = d.pick(("", " that day", " in total", " again"))
            return f"{subj.text} {verb} {self.measure()}{tail}"
        if kind == "year":
            verb = d.pick(("was born", "moved here", "got married", "started work", "left home"))
            if subj.plural:
                verb = verb.replace("was", "were")
            return f"{subj.text} {verb} in {d.integer(1900, 2024)}"
        have = "has" if subj.person == "3s" else "have"
        verb = d.pick((have, "had", "counted", "found", "needed"))
        return f"{subj.text} {verb} {self.count()} {plural(self.noun(countable=True))}"

    # ---- sentences ----

    def statement(self, target: int) -> str:
        d = self.d
        text, subj, aux, negated = self.clause()
        single = True
        if d.chance(0.2):
            text = f"{_capitalize(self.when())}, {text}"
        while word_count(text) < target - 4:
            more, _, _, _ = self.clause()
            joiner = "; " if d.chance(0.15) else f", {d.pick(_CONJUNCTIONS)} "
            text, single = text + joiner + more, False
        if d.chance(0.08) and word_count(text) < target:
            items = []
            for _ in range(d.integer(2, 4)):
                plural_np = d.chance(0.5)
                items.append(self.np(plural_np, det=d.pick(("some", "the") if plural_np else ("a", "the"))))
            lead = d.pick((", e.g.", ", i.e.", ", including", ":"))
            text = f"{text}{lead} {_join_list(items)}"
        elif d.chance(0.05):
            return f"{_capitalize(text)}, {self.np(True, det='the')}, etc."
        if single and aux is not None and d.chance(0.15):  # a tag question
            tag = aux if negated else ("aren't" if aux == "am" else _NEGATIVE.get(aux, aux + " not"))
            return f"{_capitalize(text)}, {tag} {subj.pronoun}?"
        if d.chance(0.12):  # reported speech
            speaker = self.person_name()[0]
            return f'"{_capitalize(text)}," {d.pick(_SAY)} {speaker}.'
        return _capitalize(text) + ("!" if d.chance(0.05) else ".")

    def question(self) -> str:
        d = self.d
        subj = self.subject()
        kind = d.weighted({"yes_no": 4, "wh": 4, "how_many": 1, "be": 2, "what_time": 1, "how_much": 1})
        verb = d.pick(self.lex.verbs)
        if kind == "yes_no":
            aux = d.pick(("Did", "Will", "Can", "Should", "Could", "Would"))
            if aux == "Did" and d.chance(0.3):
                aux = "Does" if subj.person == "3s" else "Do"
            tail = f" {self.place()}" if d.chance(0.4) else ""
            if d.chance(0.2):
                tail += f" {self.when()}"
            return f"{aux} {subj.text} {verb.base} {self.obj()}{tail}?"
        if kind == "wh":
            wh = d.pick(("Where", "When", "Why", "How"))
            aux = d.pick(("did", "will", "can", "should"))
            return f"{wh} {aux} {subj.text} {verb.base} {self.obj()}?"
        if kind == "how_many":
            noun = plural(self.noun(countable=True))
            aux = "does" if subj.person == "3s" else "do"
            aux = d.pick((aux, "did", "will"))
            return f"How many {noun} {aux} {subj.text} {verb.base}?"
        if kind == "be":
            be = d.pick((_BE_PRESENT, _BE_PAST))[subj.person]
            return f"{_capitalize(be)} {subj.text} {self.adjective()}?"
        if kind == "how_much":
            return f"Is it true that {subj.text} paid {self.money()} for {self.np(False)}?"
        return f"What time does the {self.place_noun()} open on {d.pick(DAYS)}?"

    def exclamation(self) -> str:
        d = self.d
        kind = d.weighted({"what": 2, "how": 2, "command": 3, "dont": 1})
        if kind == "what":
            adj = self.adjective()
            return f"What {article(adj)} {adj} {self.noun(countable=True)}!"
        if kind == "how":
            return f"How {self.adjective()} the {self.noun()} {d.pick(('is', 'was', 'looks'))}!"
        verb = d.pick(self.lex.verbs)
        if kind == "dont":
            return f"Don't {verb.base} {self.obj()}!"
        tail = f" {self.when()}" if d.chance(0.3) else ""
        command = f"{verb.base} {self.np()} {self.place()}{tail}"
        if d.chance(0.3):
            command = f"please {command}"
        return _capitalize(command) + d.pick((".", "!"))

    def sentence(self, target: int) -> str:
        kind = self.d.weighted({"statement": 14, "question": 4, "exclamation": 2})
        if kind == "statement" or target > 12:
            return self.statement(target)
        if kind == "question":
            return self.question()
        return self.exclamation()
