/* unicode_tables.h — the Unicode character classes, lower-case mapping and HTML entities the CLIP
 * tokenizer's text cleaning needs (generated from Python by scripts/gen_unicode_tables.py). */
#ifndef DA_UNICODE_TABLES_H
#define DA_UNICODE_TABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct { uint32_t lo, hi; } da_uni_range;            /* inclusive */
typedef struct { uint32_t lo, hi; int32_t delta; int32_t step; } da_uni_lower_run;

extern const da_uni_range da_uni_letter[], da_uni_number[], da_uni_space[], da_uni_pyspace[],
    da_uni_cased[], da_uni_case_ignorable[];
extern const int da_uni_letter_N, da_uni_number_N, da_uni_space_N, da_uni_pyspace_N, da_uni_cased_N,
    da_uni_case_ignorable_N;
extern const da_uni_lower_run da_uni_lower[];
extern const int da_uni_lower_N;

typedef struct { const char *name, *utf8; } da_html_entity;   /* "amp;" -> "&" */
extern const uint32_t da_uni_width_map[][3];  /* fullwidth/halfwidth -> 1 or 2 code points (0 = none) */
extern const int da_uni_width_map_N;
extern const da_html_entity da_html_entities[];                /* sorted by strcmp of name */
extern const int da_html_entities_N;
extern const uint32_t da_html_invalid_charrefs[][2];           /* &#N; special cases */
extern const int da_html_invalid_charrefs_N;
extern const da_uni_range da_html_invalid_codepoints[];       /* &#N; that are dropped */
extern const int da_html_invalid_codepoints_N;

bool da_uni_is_letter(uint32_t c);         /* regex \p{L} */
bool da_uni_is_number(uint32_t c);         /* regex \p{N} */
bool da_uni_is_space(uint32_t c);          /* regex \s */
bool da_uni_is_pyspace(uint32_t c);        /* Python str.isspace() (what str.strip() removes) */
bool da_uni_is_cased(uint32_t c);          /* cased and not case-ignorable (final-sigma rule) */
bool da_uni_is_case_ignorable(uint32_t c);
/* Python's one-to-one lower-case mapping (U+0130, which lowers to two code points, is the
 * caller's business). */
uint32_t da_uni_tolower(uint32_t c);
/* ftfy's width fix: U+FF01..U+FFEF forms to standard width. Writes 1 or 2 code points to out
 * and returns how many (1 with out[0] = c when c is not such a form). */
int da_uni_width_fix(uint32_t c, uint32_t out[2]);
/* html.unescape() tables: the entity whose name (with or without ';') is exactly name[0..len),
 * or NULL; and the replacement of a numeric reference &#num; (-1 when it is dropped). */
const da_html_entity *da_html_find(const char *name, size_t len);
int64_t da_html_numeric(uint64_t num);

#endif
