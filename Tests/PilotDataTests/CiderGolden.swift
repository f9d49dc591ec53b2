// Golden CIDEr-D values: pycocoevalcap 1.2 `Cider` on lowercased whitespace tokens, produced
// with ../shared/refs/cider_ref.py (the values are committed, not the script). Corpora:
// tied counts, repeated n-grams, short vs long captions, a caption sharing nothing with its
// references, mixed case and spacing, an empty prediction, a one-image corpus (scores 0)
// and the shared cider_tiny example.
let ciderGoldenJSON = #"""
{
 "_about": "Golden CIDEr-D values from pycocoevalcap 1.2 Cider (whitespace-lower tokens), produced with ../shared/refs/cider_ref.py; ids are scored in sorted order.",
 "corpora": {
  "empty_prediction": {
   "cider_d": 2.927225535404983,
   "per_image": {
    "1": 0.0,
    "2": 5.854451070809966
   },
   "preds": {
    "1": "",
    "2": "a blue square"
   },
   "refs": {
    "1": [
     "a red circle"
    ],
    "2": [
     "a blue square",
     "blue square"
    ]
   }
  },
  "one_image": {
   "cider_d": 0.0,
   "per_image": {
    "only": 0.0
   },
   "preds": {
    "only": "a red circle"
   },
   "refs": {
    "only": [
     "a red circle",
     "red circle"
    ]
   }
  },
  "repeated_ngrams": {
   "cider_d": 3.126904626186437,
   "per_image": {
    "1": 4.04838888515794,
    "2": 2.4017236208079127,
    "3": 5.1589218837741395,
    "4": 1.56138025713649,
    "5": 2.4641084840557035
   },
   "preds": {
    "1": "the cat the cat",
    "2": "dog dog dog",
    "3": "a b a b a b",
    "4": "red red red red red",
    "5": "x y z x y z"
   },
   "refs": {
    "1": [
     "the cat the cat the cat",
     "a cat on a mat",
     "the the the cat"
    ],
    "2": [
     "dog dog dog dog dog dog",
     "a dog runs",
     "dogs run and run and run"
    ],
    "3": [
     "a b a b a b a b",
     "a b c d e",
     "b a b a"
    ],
    "4": [
     "red red red square",
     "a red square",
     "square red red"
    ],
    "5": [
     "x y z",
     "x x y y z z",
     "z y x"
    ]
   }
  },
  "shared_cider_tiny": {
   "cider_d": 1.777004588009557,
   "per_image": {
    "1": 3.3153355603513224,
    "2": 1.7962150118320561,
    "3": 0.2194631918452929
   },
   "preds": {
    "1": "a man riding a horse on the beach",
    "2": "two dogs playing in the grass",
    "3": "a cat sitting on a couch"
   },
   "refs": {
    "1": [
     "A man riding a horse on the beach.",
     "A person rides a brown horse along the shore",
     "man on horse near the ocean"
    ],
    "2": [
     "Two dogs playing with a ball in the grass.",
     "two dogs play in a grassy field",
     "A pair of dogs chase a ball"
    ],
    "3": [
     "A plate of food with broccoli and rice",
     "a dinner plate with rice, broccoli and chicken",
     "food on a white plate"
    ]
   }
  },
  "short_long_disjoint": {
   "cider_d": 1.8522531796292723,
   "per_image": {
    "l": 0.0044787080408913065,
    "m": 4.677534113399271,
    "n": 0.0,
    "q": 4.404272107147251,
    "s": 0.21252027205333826,
    "w": 1.8147138771348814
   },
   "preds": {
    "l": "a small red circle on the left of a large blue square near the top of the image today",
    "m": "a man riding a horse",
    "n": "zebra umbrella piano",
    "q": "A GREEN   square",
    "s": "circle",
    "w": "single"
   },
   "refs": {
    "l": [
     "circle",
     "a circle",
     "one circle"
    ],
    "m": [
     "A Man Riding A Horse",
     "man  on a HORSE",
     "a horse with a rider"
    ],
    "n": [
     "a yellow triangle below a purple cross",
     "a purple cross above a yellow triangle",
     "a triangle and a cross"
    ],
    "q": [
     "a green square",
     "green square",
     "a square that is green"
    ],
    "s": [
     "a small red circle on the left of a large blue square near the top of the image",
     "a red circle left of a blue square",
     "two shapes a red circle and a blue square"
    ],
    "w": [
     "single",
     "single word",
     "one single word here"
    ]
   }
  },
  "tied_counts": {
   "cider_d": 4.71307594288628,
   "per_image": {
    "a": 7.180513984827495,
    "b": 3.0005136512532653,
    "c": 4.248090120697649,
    "d": 4.423186014766712
   },
   "preds": {
    "a": "a red circle and a blue square",
    "b": "two red circles red circles",
    "c": "a green cross a green cross",
    "d": "a white diamond"
   },
   "refs": {
    "a": [
     "a red circle and a blue square",
     "a red circle and a blue square",
     "a blue square and a red circle",
     "red circle blue square"
    ],
    "b": [
     "two red circles",
     "two red circles",
     "a red circle and a red circle"
    ],
    "c": [
     "a green cross",
     "a green cross above a green cross",
     "green cross green cross"
    ],
    "d": [
     "a small white diamond",
     "a white diamond",
     "one small white diamond"
    ]
   }
  }
 }
}
"""#
