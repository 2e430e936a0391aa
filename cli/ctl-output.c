/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl-output.h"
#include "cm-util.h"

typedef struct {
    uint32_t first, last;
} Range;

/* Combining marks and zero-width characters: they take no column of their own. */
static const Range zero_width[] = {
    {0x0300, 0x036F},   {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
    {0x05C4, 0x05C5},   {0x05C7, 0x05C7}, {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0670, 0x0670},
    {0x06D6, 0x06DC},   {0x06DF, 0x06E4}, {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},
    {0x1AB0, 0x1AFF},   {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x2060, 0x2064}, {0x20D0, 0x20FF},
    {0x302A, 0x302D},   {0x3099, 0x309A}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF},
    {0xE0100, 0xE01EF},
};

/* East Asian Wide and Fullwidth (the CJK blocks, Hangul, fullwidth forms, emoji): two columns. */
static const Range wide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x3029},
    {0x302E, 0x303E},   {0x3041, 0x3098},   {0x309B, 0x33FF},   {0x3400, 0x4DBF},
    {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},
    {0xF900, 0xFAFF},   {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},
    {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4}, {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF},
    {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A},
    {0x1F200, 0x1F251}, {0x1F300, 0x1F64F}, {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB},
    {0x1F900, 0x1F9FF}, {0x1FA70, 0x1FAFF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

static bool in_ranges(const Range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp < r[mid].first)
            hi = mid;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/*
 * Decodes one UTF-8 character at @s into @ret_cp. Returns: its length in bytes (1 to 4), or 0
 * when the bytes there are not valid UTF-8 (overlong, surrogate, truncated, past U+10FFFF).
 */
static size_t utf8_decode(const unsigned char *s, uint32_t *ret_cp)
{
    uint32_t cp;
    size_t n;

    if (s[0] < 0x80) {
        *ret_cp = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t k = 1; k < n; k++) {
        /* A NUL here is not a continuation byte, so this never reads past the string. */
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    *ret_cp = cp;
    return n;
}

static size_t char_width(uint32_t cp)
{
    if (in_ranges(zero_width, ELEMENTSOF(zero_width), cp))
        return 0;
    if (in_ranges(wide, ELEMENTSOF(wide), cp))
        return 2;
    return 1;
}

/* Control characters, and the bidirectional overrides that can make text read reversed. */
static bool is_unsafe(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t ctl_text_width(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t w = 0;

    while (s && *s) {
        uint32_t cp;
        size_t n = utf8_decode(s, &cp);
        if (n == 0) {
            w++;
            s++;
            continue;
        }
        w += is_unsafe(cp) ? 1 : char_width(cp);
        s += n;
    }
    return w;
}

char *ctl_text_sanitize(const char *str, bool single_line)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    /* Every replacement is one byte for at least one byte, so the copy is never longer. */
    char *out = malloc(strlen((const char *)s) + 1), *o = out;

    if (!out)
        return NULL;
    while (*s) {
        uint32_t cp;
        size_t n = utf8_decode(s, &cp);
        if (n == 0) {
            *o++ = '?';
            s++;
            continue;
        }
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            if (single_line)
                *o++ = ' ';
            else if (cp != '\r')
                *o++ = (char)cp;
        } else if (is_unsafe(cp)) {
            *o++ = '?';
        } else {
            memcpy(o, s, n);
            o += n;
        }
        s += n;
    }
    *o = 0;
    return out;
}

char *ctl_text_truncate(const char *str, size_t max_width)
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026, one column */
    const unsigned char *s = (const unsigned char *)str;
    size_t w = 0, cut = 0;
    char *out;

    if (ctl_text_width(str) <= max_width || max_width == 0)
        return strdup(max_width ? str : "");
    /* Keep whole characters while they and the ellipsis fit. */
    while (s[cut]) {
        uint32_t cp;
        size_t n = utf8_decode(s + cut, &cp), cw;
        cw = n == 0 ? 1 : (is_unsafe(cp) ? 1 : char_width(cp));
        if (n == 0)
            n = 1;
        if (w + cw + 1 > max_width)
            break;
        w += cw;
        cut += n;
    }
    out = malloc(cut + sizeof(ellipsis));
    if (!out)
        return NULL;
    memcpy(out, str, cut);
    memcpy(out + cut, ellipsis, sizeof(ellipsis));
    return out;
}

char *ctl_json_text(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return strdup("-");
    case json_type_boolean:
        return strdup(json_object_get_boolean(v) ? "yes" : "no");
    case json_type_int:
        return cm_strdup_printf("%" PRId64, json_object_get_int64(v));
    case json_type_double:
        return cm_strdup_printf("%g", json_object_get_double(v));
    case json_type_string:
        return strdup(json_object_get_string(v));
    default:
        return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                            JSON_C_TO_STRING_NOSLASHESCAPE));
    }
}

json_object *ctl_json_path(json_object *o, const char *path)
{
    _cleanup_free_ char *copy = strdup(path);
    char *key = copy;

    if (!copy)
        return NULL;
    while (o && key) {
        char *dot = strchr(key, '.');
        if (dot)
            *dot = 0;
        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &o))
            return NULL;
        key = dot ? dot + 1 : NULL;
    }
    return o;
}

struct CtlTable {
    CtlColumn *columns;
    size_t n_columns;
    char **cells; /* n_rows * n_columns, row by row */
    size_t n_rows, cap_rows;
};

CtlTable *ctl_table_new(const CtlColumn *columns, size_t n_columns)
{
    CtlTable *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->columns = calloc(n_columns ? n_columns : 1, sizeof(*t->columns));
    if (!t->columns) {
        free(t);
        return NULL;
    }
    memcpy(t->columns, columns, n_columns * sizeof(*columns));
    t->n_columns = n_columns;
    return t;
}

CtlTable *ctl_table_free(CtlTable *t)
{
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->columns);
    free(t);
    return NULL;
}

size_t ctl_table_rows(const CtlTable *t)
{
    return t->n_rows;
}

int ctl_table_add_row(CtlTable *t, const char *const *cells, size_t n)
{
    char **row;

    if (n != t->n_columns)
        return -EINVAL;
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
        char **nc = reallocarray(t->cells, cap * t->n_columns, sizeof(*nc));
        if (!nc)
            return -ENOMEM;
        t->cells = nc;
        t->cap_rows = cap;
    }
    row = t->cells + t->n_rows * t->n_columns;
    for (size_t i = 0; i < n; i++) {
        /* An empty cell shows "-", so columns stay readable and lines end without blanks. */
        _cleanup_free_ char *clean =
            ctl_text_sanitize(cells[i] && *cells[i] ? cells[i] : "-", true);
        row[i] = clean ? ctl_text_truncate(clean, CTL_TABLE_MAX_CELL_WIDTH) : NULL;
        if (!row[i]) {
            for (size_t k = 0; k < i; k++)
                free(row[k]);
            return -ENOMEM;
        }
    }
    t->n_rows++;
    return 0;
}

char *ctl_json_cell(json_object *row, const char *key)
{
    const char *plus = strchr(key, '+');
    _cleanup_free_ char *id_key = NULL, *id = NULL;
    json_object *name;

    if (!plus)
        return ctl_json_text(ctl_json_path(row, key));
    id_key = strndup(key, (size_t)(plus - key));
    if (!id_key)
        return NULL;
    id = ctl_json_text(ctl_json_path(row, id_key));
    name = ctl_json_path(row, plus + 1);
    if (!id || !json_object_is_type(name, json_type_string) || !json_object_get_string(name)[0] ||
        strcmp(id, "-") == 0)
        return TAKE_PTR(id);
    return cm_strdup_printf("%s %s", id, json_object_get_string(name));
}

int ctl_table_add_json_row(CtlTable *t, json_object *row, const char *const *keys, size_t n)
{
    char **texts = calloc(n ? n : 1, sizeof(*texts));
    int r = 0;

    if (!texts)
        return -ENOMEM;
    for (size_t i = 0; i < n && r == 0; i++) {
        texts[i] = ctl_json_cell(row, keys[i]);
        if (!texts[i])
            r = -ENOMEM;
    }
    if (r == 0)
        r = ctl_table_add_row(t, (const char *const *)texts, n);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    return r;
}

static void pad(FILE *f, size_t n)
{
    while (n--)
        fputc(' ', f);
}

static void print_row(const CtlTable *t, FILE *f, size_t indent, const size_t *widths,
                      const char *const *cells)
{
    pad(f, indent);
    for (size_t c = 0; c < t->n_columns; c++) {
        size_t w = ctl_text_width(cells[c]), fill = widths[c] > w ? widths[c] - w : 0;
        bool last = c + 1 == t->n_columns;
        if (c)
            fputs("  ", f);
        if (t->columns[c].align == CTL_ALIGN_RIGHT)
            pad(f, fill);
        fputs(cells[c], f);
        if (t->columns[c].align == CTL_ALIGN_LEFT && !last)
            pad(f, fill);
    }
    fputc('\n', f);
}

int ctl_table_print(const CtlTable *t, FILE *f, size_t indent)
{
    _cleanup_free_ size_t *widths = calloc(t->n_columns ? t->n_columns : 1, sizeof(*widths));
    _cleanup_free_ const char **titles = calloc(t->n_columns ? t->n_columns : 1, sizeof(*titles));

    if (!widths || !titles)
        return -ENOMEM;
    for (size_t c = 0; c < t->n_columns; c++) {
        titles[c] = t->columns[c].title;
        widths[c] = ctl_text_width(titles[c]);
        for (size_t r = 0; r < t->n_rows; r++) {
            size_t w = ctl_text_width(t->cells[r * t->n_columns + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    print_row(t, f, indent, widths, titles);
    for (size_t r = 0; r < t->n_rows; r++)
        print_row(t, f, indent, widths, (const char *const *)t->cells + r * t->n_columns);
    return ferror(f) ? -EIO : 0;
}

void ctl_print_field(FILE *f, size_t indent, size_t label_width, const char *label,
                     const char *value)
{
    _cleanup_free_ char *clean = ctl_text_sanitize(value ? value : "-", false);
    const char *line = clean ? clean : "?";
    size_t w = ctl_text_width(label) + 1;

    pad(f, indent);
    fprintf(f, "%s:", label);
    pad(f, label_width + 2 > w ? label_width + 2 - w : 1);
    for (;;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        fwrite(line, 1, len, f);
        fputc('\n', f);
        if (!nl)
            break;
        line = nl + 1;
        pad(f, indent + (label_width + 2 > w ? label_width + 2 : w + 1));
    }
}

void ctl_print_json_field(FILE *f, size_t indent, size_t label_width, const char *label,
                          json_object *value)
{
    _cleanup_free_ char *text = ctl_json_text(value);
    ctl_print_field(f, indent, label_width, label, text ? text : "?");
}

int ctl_print_json(FILE *f, json_object *o)
{
    const char *text = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text)
        return -ENOMEM;
    fputs(text, f);
    fputc('\n', f);
    return ferror(f) ? -EIO : 0;
}
