/* unicode.c — look-ups in the generated Unicode tables (unicode_tables.c): binary search over
 * sorted, disjoint code-point ranges. */
#include "text/unicode_tables.h"

#include <string.h>

static bool in_ranges(const da_uni_range *r, int n, uint32_t c) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid - 1;
        else if (c > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

bool da_uni_is_letter(uint32_t c) {
    if (c < 128) return (c | 32) >= 'a' && (c | 32) <= 'z';
    return in_ranges(da_uni_letter, da_uni_letter_N, c);
}

bool da_uni_is_number(uint32_t c) {
    if (c < 128) return c >= '0' && c <= '9';
    return in_ranges(da_uni_number, da_uni_number_N, c);
}

bool da_uni_is_space(uint32_t c) { return in_ranges(da_uni_space, da_uni_space_N, c); }
bool da_uni_is_pyspace(uint32_t c) { return in_ranges(da_uni_pyspace, da_uni_pyspace_N, c); }
bool da_uni_is_cased(uint32_t c) { return in_ranges(da_uni_cased, da_uni_cased_N, c); }
bool da_uni_is_case_ignorable(uint32_t c) { return in_ranges(da_uni_case_ignorable, da_uni_case_ignorable_N, c); }

uint32_t da_uni_tolower(uint32_t c) {
    if (c < 128) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    int lo = 0, hi = da_uni_lower_N - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const da_uni_lower_run *r = &da_uni_lower[mid];
        if (c < r->lo) hi = mid - 1;
        else if (c > r->hi) lo = mid + 1;
        else return ((c - r->lo) % (uint32_t)r->step == 0) ? (uint32_t)((int32_t)c + r->delta) : c;
    }
    return c;
}

int da_uni_width_fix(uint32_t c, uint32_t out[2]) {
    out[0] = c;
    if (c == 0x3000) { out[0] = ' '; return 1; }   /* ftfy treats the ideographic space alike */
    if (c < 0xFF01 || c > 0xFFEF) return 1;
    int lo = 0, hi = da_uni_width_map_N - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < da_uni_width_map[mid][0]) hi = mid - 1;
        else if (c > da_uni_width_map[mid][0]) lo = mid + 1;
        else {
            out[0] = da_uni_width_map[mid][1];
            out[1] = da_uni_width_map[mid][2];
            return out[1] ? 2 : 1;
        }
    }
    return 1;
}

const da_html_entity *da_html_find(const char *name, size_t len) {
    int lo = 0, hi = da_html_entities_N - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *e = da_html_entities[mid].name;
        int cmp = strncmp(name, e, len);
        if (cmp == 0 && e[len] != 0) cmp = -1;   /* name is a proper prefix of e: it sorts first */
        if (cmp < 0) hi = mid - 1;
        else if (cmp > 0) lo = mid + 1;
        else return &da_html_entities[mid];
    }
    return NULL;
}

int64_t da_html_numeric(uint64_t num) {
    for (int i = 0; i < da_html_invalid_charrefs_N; i++)
        if (num == da_html_invalid_charrefs[i][0]) return da_html_invalid_charrefs[i][1];
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return 0xFFFD;
    if (in_ranges(da_html_invalid_codepoints, da_html_invalid_codepoints_N, (uint32_t)num)) return -1;
    return (int64_t)num;
}
