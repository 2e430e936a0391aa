/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The domain XML: golden files for a few specifications (CB_UPDATE_GOLDEN=1 rewrites them, to be
 * reviewed in the diff), and hostile department text fed through every text field: the output
 * stays well-formed, has exactly the benign element structure, carries the text only as text
 * inside <description> and the metadata's <department>/<system>, bounded, and libvirt (its test
 * driver) accepts it and hands the metadata back with the same ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "br-domain-xml.h"
#include "cm-cleanup.h"

#define GOLDEN_DIR TEST_DATA_DIR "/domain-xml"
#define TEXT_MAX 1024 /* br-domain-xml.c's TEXT_MAX_BYTES: department text kept in the XML */
#define FFFD "\xef\xbf\xbd"

static virConnectPtr conn; /* test:///default, shared by the tests that define domains */

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)len + 1);
        if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
            free(buf);
            buf = NULL;
        }
        if (buf) {
            buf[len] = 0;
            *ret_len = (size_t)len;
        }
    }
    fclose(f);
    return buf;
}

static void doc_freep(xmlDocPtr *d)
{
    if (*d)
        xmlFreeDoc(*d);
}
#define _cleanup_doc_ _cleanup_(doc_freep)

static char *build(const BrDomainSpec *spec)
{
    CmError err = {0};
    char *xml = NULL;
    if (br_domain_xml_build(spec, &xml, &err) < 0)
        fail_msg("br_domain_xml_build: %s", err.message);
    assert_non_null(xml);
    return xml;
}

/* Strict parse: no recovery, no network, no entity substitution. */
static xmlDocPtr parse_strict(const char *xml)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL, XML_PARSE_NONET);
    if (!doc)
        fail_msg("not well-formed XML:\n%.2000s", xml);
    return doc;
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0)
            return n;
    return NULL;
}

static xmlNodePtr metadata_instance(xmlDocPtr doc)
{
    xmlNodePtr inst = child(child(xmlDocGetRootElement(doc), "metadata"), "instance");
    if (!inst || !inst->ns || xmlStrcmp(inst->ns->href, BAD_CAST BR_XMLNS_URI) != 0)
        fail_msg("no <metadata><cloudbroker:instance> in the project's namespace");
    return inst;
}

/* The text content of @n as a malloc'ed string ("" for none). */
static char *text_of(xmlNodePtr n)
{
    xmlChar *c = n ? xmlNodeGetContent(n) : NULL;
    char *s = strdup(c ? (const char *)c : "");
    xmlFree(c);
    assert_non_null(s);
    return s;
}

static unsigned count_elements(xmlNodePtr n, const char *name)
{
    unsigned k = 0;
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0)
            k++;
        k += count_elements(n->children, name);
    }
    return k;
}

/* Elements whose text may carry department-supplied text. */
static bool holds_department_text(xmlNodePtr n)
{
    if (!n || n->type != XML_ELEMENT_NODE)
        return false;
    if (!n->ns)
        return xmlStrcmp(n->name, BAD_CAST "description") == 0 && n->parent &&
               n->parent->type == XML_ELEMENT_NODE &&
               xmlStrcmp(n->parent->name, BAD_CAST "domain") == 0;
    return xmlStrcmp(n->ns->href, BAD_CAST BR_XMLNS_URI) == 0 &&
           (xmlStrcmp(n->name, BAD_CAST "department") == 0 ||
            xmlStrcmp(n->name, BAD_CAST "system") == 0);
}

/*
 * Walks @a (hostile) and @b (benign) in step: the same node kinds in the same order, the same
 * element names, namespaces and attributes (names and values), and the same text everywhere
 * except inside the three elements that hold department text.
 */
static void same_structure(xmlNodePtr a, xmlNodePtr b, const char *where)
{
    for (; a || b; a = a->next, b = b->next) {
        if (!a || !b)
            fail_msg("under <%s>: %s has an extra node", where, a ? "hostile" : "benign");
        if (a->type != b->type)
            fail_msg("under <%s>: node kind %d where the benign output has %d", where, a->type,
                     b->type);
        if (a->type == XML_TEXT_NODE || a->type == XML_CDATA_SECTION_NODE) {
            if (a->type == XML_CDATA_SECTION_NODE)
                fail_msg("under <%s>: a CDATA section", where);
            if (!holds_department_text(a->parent) && xmlStrcmp(a->content, b->content) != 0)
                fail_msg("under <%s>: text '%s' where the benign output has '%s'", where,
                         a->content, b->content);
            continue;
        }
        if (a->type != XML_ELEMENT_NODE)
            fail_msg("under <%s>: unexpected node kind %d", where, a->type);
        if (xmlStrcmp(a->name, b->name) != 0)
            fail_msg("under <%s>: <%s> where the benign output has <%s>", where, a->name, b->name);
        if ((a->ns == NULL) != (b->ns == NULL) ||
            (a->ns && xmlStrcmp(a->ns->href, b->ns->href) != 0))
            fail_msg("<%s>: namespace differs", a->name);
        xmlAttrPtr pa = a->properties, pb = b->properties;
        for (; pa || pb; pa = pa->next, pb = pb->next) {
            if (!pa || !pb)
                fail_msg("<%s>: attribute count differs", a->name);
            xmlChar *va = xmlNodeGetContent((xmlNodePtr)pa),
                    *vb = xmlNodeGetContent((xmlNodePtr)pb);
            bool same = xmlStrcmp(pa->name, pb->name) == 0 && xmlStrcmp(va, vb) == 0;
            if (!same)
                fail_msg("<%s>: attribute %s='%s' where the benign output has %s='%s'", a->name,
                         pa->name, va, pb->name, vb);
            xmlFree(va);
            xmlFree(vb);
        }
        same_structure(a->children, b->children, (const char *)a->name);
    }
}

/* ---- the specifications of the golden files ---- */

static BrDomainSpec spec_kvm_production(void)
{
    return (BrDomainSpec){
        .name = "cb-12-0",
        .uuid = "3f8c2a8e-6b1d-4f0e-9a57-1c2d3e4f5a60",
        .domain_type = "kvm",
        .arch = "x86_64",
        .machine = "q35",
        .vcpus = 2,
        .max_vcpus = 4,
        .memory_mib = 4096,
        .max_memory_mib = 8192,
        .pool = "default",
        .volume = "cb-12-0.qcow2",
        .disk_format = "qcow2",
        .network = "default",
        .department_id = 3,
        .system_id = 7,
        .allocation_id = 12,
        .instance_id = 40,
        .request_id = 9,
        .index = 0,
        .purpose = "production",
        .department_name = "民政局",
        .system_name = "网上办事大厅",
    };
}

static BrDomainSpec spec_qemu_trial(void)
{
    return (BrDomainSpec){
        .name = "cb-5-1",
        .uuid = "a0b1c2d3-e4f5-4617-8899-aabbccddeeff",
        .domain_type = "qemu",
        .arch = "x86_64",
        .machine = "pc",
        .vcpus = 1,
        .max_vcpus = 2,
        .memory_mib = 512,
        .max_memory_mib = 1024,
        .pool = "cb-trial",
        .volume = "cb-5-1.qcow2",
        .disk_format = "qcow2",
        .network = NULL,
        .department_id = 1,
        .system_id = 2,
        .allocation_id = 5,
        .instance_id = 11,
        .request_id = 4,
        .index = 1,
        .purpose = "trial",
        .department_name = "财政局",
        .system_name = "预算管理一体化系统（试运行）",
    };
}

static BrDomainSpec spec_kvm_default_machine(void)
{
    return (BrDomainSpec){
        .name = "cb-7-2",
        .uuid = "0f0e0d0c-0b0a-4908-8706-050403020100",
        .domain_type = "kvm",
        .arch = "x86_64",
        .machine = NULL,
        .vcpus = 8,
        .max_vcpus = 16,
        .memory_mib = 16384,
        .max_memory_mib = 32768,
        .pool = "prod-images",
        .volume = "cb-7-2.raw",
        .disk_format = "raw",
        .network = "gov-internal",
        .department_id = 21,
        .system_id = 34,
        .allocation_id = 7,
        .instance_id = 19,
        .request_id = 15,
        .index = 2,
        .purpose = "production",
        .department_name = "Statistics Bureau",
        .system_name = "census-2030",
    };
}

static BrDomainSpec spec_escaping(void)
{
    BrDomainSpec s = spec_qemu_trial();
    s.department_name = "R&D <Labs> \"Quotes\" 'apostrophes'";
    s.system_name = "]]> & </description><devices/>";
    return s;
}

static BrDomainSpec spec_for_libvirt(void)
{
    BrDomainSpec s = spec_qemu_trial();
    s.domain_type = "test"; /* what br_virt_domain_type() answers for the test driver */
    s.name = "cb-hostile-0";
    s.uuid = "5d9e3a56-0c51-4d4e-b7a7-8b1e2f3c4d5e";
    return s;
}

static void check_golden(const char *file, const BrDomainSpec *spec)
{
    _cleanup_free_ char *xml = build(spec);
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ char *want = NULL;
    const char *update = getenv("CB_UPDATE_GOLDEN");
    size_t want_len = 0;

    assert_true(asprintf(&path, "%s/%s", GOLDEN_DIR, file) > 0);
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(xml, 1, strlen(xml), f), strlen(xml));
        assert_int_equal(fclose(f), 0);
        print_message("rewrote %s\n", path);
    }
    want = read_file(path, &want_len);
    if (!want)
        fail_msg("%s is missing: run with CB_UPDATE_GOLDEN=1 and review the new file", path);
    if (want_len != strlen(xml) || memcmp(want, xml, want_len) != 0)
        fail_msg("%s differs from the generated XML (CB_UPDATE_GOLDEN=1 rewrites it; review the "
                 "diff):\n--- generated ---\n%s",
                 path, xml);
    /* A golden file is only worth comparing against if it is itself well-formed. */
    _cleanup_doc_ xmlDocPtr doc = parse_strict(xml);
    assert_int_equal(count_elements(xmlDocGetRootElement(doc), "disk"), 1);
}

static void test_golden_kvm_production_network(void **state)
{
    BrDomainSpec s = spec_kvm_production();
    check_golden("kvm-production-network.xml", &s);
}

static void test_golden_qemu_trial_no_network(void **state)
{
    BrDomainSpec s = spec_qemu_trial();
    check_golden("qemu-trial-no-network.xml", &s);
}

static void test_golden_kvm_default_machine_raw(void **state)
{
    BrDomainSpec s = spec_kvm_default_machine();
    check_golden("kvm-production-raw-default-machine.xml", &s);
}

static void test_golden_escaping(void **state)
{
    BrDomainSpec s = spec_escaping();
    check_golden("qemu-trial-escaped-text.xml", &s);
}

/* What the golden files show, asserted on its own so a careless regeneration is caught. */
static void test_kvm_and_qemu_differences(void **state)
{
    BrDomainSpec k = spec_kvm_production(), q = spec_qemu_trial();
    _cleanup_free_ char *kx = build(&k), *qx = build(&q);
    _cleanup_doc_ xmlDocPtr kd = parse_strict(kx), qd = parse_strict(qx);
    xmlNodePtr kr = xmlDocGetRootElement(kd), qr = xmlDocGetRootElement(qd);
    _cleanup_free_ char *kt = NULL, *qt = NULL, *kvcpu = NULL, *kmem = NULL, *kcur = NULL;
    xmlChar *v;

    v = xmlGetProp(kr, BAD_CAST "type");
    assert_string_equal((char *)v, "kvm");
    xmlFree(v);
    v = xmlGetProp(qr, BAD_CAST "type");
    assert_string_equal((char *)v, "qemu");
    xmlFree(v);
    /* host-model CPU only where KVM runs the guest. */
    assert_non_null(child(kr, "cpu"));
    assert_null(child(qr, "cpu"));
    /* One NIC with a network, none without. */
    assert_int_equal(count_elements(kr, "interface"), 1);
    assert_int_equal(count_elements(qr, "interface"), 0);
    /* Maximums at define time, current below them. */
    kmem = text_of(child(kr, "memory"));
    kcur = text_of(child(kr, "currentMemory"));
    assert_string_equal(kmem, "8388608");
    assert_string_equal(kcur, "4194304");
    kvcpu = text_of(child(kr, "vcpu"));
    assert_string_equal(kvcpu, "4");
    v = xmlGetProp(child(kr, "vcpu"), BAD_CAST "current");
    assert_string_equal((char *)v, "2");
    xmlFree(v);
    /* Purpose in the description and the metadata. */
    kt = text_of(child(kr, "description"));
    qt = text_of(child(qr, "description"));
    assert_non_null(strstr(kt, "production"));
    assert_non_null(strstr(qt, "trial"));
    assert_non_null(strstr(kt, "民政局"));
    v = xmlGetProp(child(metadata_instance(qd), "allocation"), BAD_CAST "purpose");
    assert_string_equal((char *)v, "trial");
    xmlFree(v);
}

static void test_incomplete_spec_refused(void **state)
{
    BrDomainSpec base = spec_kvm_production(), s;
    CmError err = {0};
    char *xml = (char *)"untouched";

    s = base, s.name = NULL;
    assert_int_equal(br_domain_xml_build(&s, &xml, &err), -EIO);
    assert_int_equal(err.kind, CM_ERROR_INTERNAL);
    assert_string_equal(xml, "untouched");
    s = base, s.uuid = NULL;
    assert_true(br_domain_xml_build(&s, &xml, &err) < 0);
    s = base, s.pool = NULL;
    assert_true(br_domain_xml_build(&s, &xml, &err) < 0);
    s = base, s.volume = NULL;
    assert_true(br_domain_xml_build(&s, &xml, &err) < 0);
    s = base, s.vcpus = 0;
    assert_true(br_domain_xml_build(&s, &xml, &err) < 0);
    s = base, s.vcpus = 5, s.max_vcpus = 4;
    assert_true(br_domain_xml_build(&s, &xml, &err) < 0);
    s = base, s.memory_mib = 8193, s.max_memory_mib = 8192;
    assert_true(br_domain_xml_build(&s, &xml, &err) < 0);
    assert_string_equal(xml, "untouched");
    /* At the maximums exactly is fine. */
    s = base, s.vcpus = 4, s.memory_mib = 8192;
    assert_int_equal(br_domain_xml_build(&s, &xml, &err), 0);
    free(xml);
}

/* ---- br_xml_text_sanitize ---- */

static void sanitized_is(const char *in, size_t max, const char *want)
{
    _cleanup_free_ char *got = br_xml_text_sanitize(in, max);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("sanitize(\"%s\", %zu) = \"%s\", want \"%s\"", in ? in : "(null)", max, got, want);
}

static void test_sanitize(void **state)
{
    sanitized_is(NULL, 10, "");
    sanitized_is("abc", 0, "");
    sanitized_is("abc", 2, "ab");
    sanitized_is("tab\there\nnl\rcr", 100, "tab\there\nnl\rcr");
    sanitized_is("a\x01"
                 "b\x1f"
                 "c\x7f",
                 100, "a" FFFD "b" FFFD "c\x7f");
    /* Cut at a character boundary, never inside one. */
    sanitized_is("政政", 5, "政");
    sanitized_is("政政", 6, "政政");
    sanitized_is("a\x01", 3, "a"); /* the replacement (3 bytes) does not fit after "a" */
    /* Invalid UTF-8: bad continuation, stray continuation, overlong, truncated, 5-byte lead. */
    sanitized_is("\xc3\x28", 100, FFFD "(");
    sanitized_is("\x80", 100, FFFD);
    sanitized_is("\xc0\xaf", 100, FFFD FFFD);
    sanitized_is("ab\xe6\x94", 100, "ab" FFFD FFFD);
    sanitized_is("\xf8\x88\x80\x80\x80", 100, FFFD FFFD FFFD FFFD FFFD);
    /* Surrogates, the non-characters XML 1.0 excludes, and the code space's limits. */
    sanitized_is("x\xed\xa0\x80y", 100, "x" FFFD FFFD FFFD "y");
    sanitized_is("\xef\xbf\xbe\xef\xbf\xbf", 100, FFFD FFFD);
    sanitized_is("\xf4\x8f\xbf\xbf", 100, "\xf4\x8f\xbf\xbf"); /* U+10FFFF is allowed */
    /* Above U+10FFFF: one replacement per byte, as for every invalid sequence here. */
    sanitized_is("\xf4\x90\x80\x80", 100, FFFD FFFD FFFD FFFD);
    sanitized_is("\xef\xbf\xbd", 100, "\xef\xbf\xbd"); /* U+FFFD itself stays */
}

/* ---- metadata parsing ---- */

static void test_metadata_parse_rejects(void **state)
{
    int64_t d = -7, s = -7, a = -7, i = -7;
    static const char *const bad[] = {
        "",
        "not xml",
        "<instance/>",
        "<x:instance xmlns:x='urn:example:other'><x:department id='1'/><x:system id='2'/>"
        "<x:allocation id='3'/><x:instance id='4'/></x:instance>",
        "<c:instance xmlns:c='" BR_XMLNS_URI "'><c:department id='1'/><c:system id='2'/>"
        "<c:allocation id='3'/></c:instance>",
        "<c:instance xmlns:c='" BR_XMLNS_URI "'><c:department id='1'/><c:system id='2'/>"
        "<c:allocation id='3'/><c:instance id='-4'/></c:instance>",
        "<c:instance xmlns:c='" BR_XMLNS_URI "'><c:department id='1x'/><c:system id='2'/>"
        "<c:allocation id='3'/><c:instance id='4'/></c:instance>",
        "<c:department xmlns:c='" BR_XMLNS_URI "' id='1'/>",
        "<c:instance xmlns:c='" BR_XMLNS_URI "'><c:department id='1'/>", /* truncated */
    };

    assert_int_equal(br_domain_metadata_parse(NULL, &d, &s, &a, &i), -EINVAL);
    for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
        if (br_domain_metadata_parse(bad[k], &d, &s, &a, &i) != -EINVAL)
            fail_msg("accepted: %s", bad[k]);
        assert_int_equal(d, -7); /* outputs untouched on failure */
    }
    assert_int_equal(br_domain_metadata_parse("<c:instance xmlns:c='" BR_XMLNS_URI "'>"
                                              "<c:department id='1'/><c:system id='2'/>"
                                              "<c:allocation id='3'/><c:instance id='4'/>"
                                              "</c:instance>",
                                              &d, &s, &a, &i),
                     0);
    assert_true(d == 1 && s == 2 && a == 3 && i == 4);
}

/*
 * An id that is not a number is refused above; an empty one, or one with leading blanks or a
 * sign, is not a number either. strtoll() reads "" as 0 with nothing consumed.
 */
static void test_metadata_parse_rejects_empty_id(void **state)
{
    int64_t d = -7, s = -7, a = -7, i = -7;
    static const char *const bad[] = {
        "<c:instance xmlns:c='" BR_XMLNS_URI "'><c:department id=''/><c:system id='2'/>"
        "<c:allocation id='3'/><c:instance id='4'/></c:instance>",
        "<c:instance xmlns:c='" BR_XMLNS_URI "'><c:department id='1'/><c:system id=' 2'/>"
        "<c:allocation id='+3'/><c:instance id='4'/></c:instance>",
    };
    for (size_t k = 0; k < ELEMENTSOF(bad); k++)
        if (br_domain_metadata_parse(bad[k], &d, &s, &a, &i) != -EINVAL)
            fail_msg("accepted (department %" PRId64 "): %s", d, bad[k]);
}

/*
 * virDomainGetMetadata(VIR_DOMAIN_METADATA_ELEMENT, uri) is how br_virt_list_domains() and the
 * agent read the metadata back. libvirt answers with the element found by its namespace URI,
 * and the parser must read that answer.
 */
static void test_metadata_parse_reads_libvirt_answer(void **state)
{
    BrDomainSpec spec = spec_for_libvirt();
    _cleanup_free_ char *xml = build(&spec);
    virDomainPtr dom = virDomainDefineXML(conn, xml);
    int64_t d = 0, s = 0, a = 0, i = 0;
    char *md;
    int r;

    if (!dom)
        fail_msg("libvirt refused the domain: %s", virGetLastErrorMessage());
    md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, BR_XMLNS_URI, 0);
    assert_int_equal(virDomainUndefine(dom), 0);
    virDomainFree(dom);
    assert_non_null(md);
    r = br_domain_metadata_parse(md, &d, &s, &a, &i);
    if (r != 0)
        fail_msg("br_domain_metadata_parse refused what libvirt returns (%d):\n%s", r, md);
    free(md);
    assert_true(d == spec.department_id && s == spec.system_id && a == spec.allocation_id &&
                i == spec.instance_id);
}

/* The <cloudbroker:instance> element of @doc serialized alone, as virDomainGetMetadata gives. */
static char *metadata_xml(xmlDocPtr doc)
{
    xmlBufferPtr buf = xmlBufferCreate();
    char *s;
    assert_non_null(buf);
    assert_true(xmlNodeDump(buf, doc, metadata_instance(doc), 0, 0) > 0);
    s = strdup((const char *)xmlBufferContent(buf));
    xmlBufferFree(buf);
    assert_non_null(s);
    return s;
}

static void test_metadata_round_trip(void **state)
{
    BrDomainSpec spec = spec_kvm_production();
    _cleanup_free_ char *xml = build(&spec);
    _cleanup_doc_ xmlDocPtr doc = parse_strict(xml);
    _cleanup_free_ char *md = metadata_xml(doc);
    int64_t d = 0, s = 0, a = 0, i = 0;

    assert_int_equal(br_domain_metadata_parse(md, &d, &s, &a, &i), 0);
    assert_true(d == spec.department_id && s == spec.system_id && a == spec.allocation_id &&
                i == spec.instance_id);
}

/* ---- hostile text ---- */

typedef struct {
    const char *what;
    const char *input; /* as a C string: what the broker can be handed */
    const char *want;  /* the text expected back from the XML; NULL: computed below */
} Hostile;

static char *one_mib_of(const char *unit)
{
    size_t ul = strlen(unit), n = (1u << 20) / ul;
    char *s = malloc(n * ul + 1);
    assert_non_null(s);
    for (size_t k = 0; k < n; k++)
        memcpy(s + k * ul, unit, ul);
    s[n * ul] = 0;
    return s;
}

static char *repeat(const char *unit, size_t times)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * times + 1);
    assert_non_null(s);
    for (size_t k = 0; k < times; k++)
        memcpy(s + k * ul, unit, ul);
    s[ul * times] = 0;
    return s;
}

/* Every C0 control character U+0001..U+001F, and what XML keeps of them. */
static void controls(char in[32], char want[32 * 3 + 1])
{
    size_t w = 0;
    for (int c = 1; c <= 0x1f; c++) {
        in[c - 1] = (char)c;
        if (c == '\t' || c == '\n' || c == '\r') {
            want[w++] = (char)c;
        } else {
            memcpy(want + w, FFFD, 3);
            w += 3;
        }
    }
    in[31] = 0;
    want[w] = 0;
}

/* The id attribute of @parent's child @name, read without caring for namespaces. */
static int64_t id_of(xmlNodePtr parent, const char *name)
{
    xmlChar *v = xmlGetProp(child(parent, name), BAD_CAST "id");
    int64_t id = v ? strtoll((const char *)v, NULL, 10) : -1;
    xmlFree(v);
    return id;
}

/*
 * Defines @xml in the test driver and reads back what libvirt kept: the description text, the
 * metadata's ids (read here directly; br_domain_metadata_parse on libvirt's answer has a test
 * of its own), and a device list with one disk and nothing of the department's text in it.
 */
static void expect_libvirt_accepts(const char *xml, const BrDomainSpec *spec,
                                   const char *want_description)
{
    virDomainPtr dom = virDomainDefineXML(conn, xml);
    char *md, *desc, *back;

    if (!dom)
        fail_msg("libvirt refused the domain: %s", virGetLastErrorMessage());
    md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, BR_XMLNS_URI, 0);
    if (!md)
        fail_msg("no metadata back from libvirt: %s", virGetLastErrorMessage());
    {
        _cleanup_doc_ xmlDocPtr mdoc = parse_strict(md);
        xmlNodePtr root = xmlDocGetRootElement(mdoc);
        assert_true(id_of(root, "department") == spec->department_id);
        assert_true(id_of(root, "system") == spec->system_id);
        assert_true(id_of(root, "allocation") == spec->allocation_id);
        assert_true(id_of(root, "instance") == spec->instance_id);
    }
    desc = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_DESCRIPTION, NULL, 0);
    assert_non_null(desc);
    assert_string_equal(desc, want_description);
    /* What libvirt made of it: still one disk, and nothing else in <devices> came from us. */
    back = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    assert_non_null(back);
    {
        _cleanup_doc_ xmlDocPtr bd = parse_strict(back);
        xmlNodePtr devices = child(xmlDocGetRootElement(bd), "devices");
        assert_int_equal(count_elements(xmlDocGetRootElement(bd), "disk"), 1);
        assert_int_equal(count_elements(devices, "interface"), 0);
        assert_int_equal(count_elements(devices, "filesystem"), 0);
        assert_int_equal(count_elements(devices, "hostdev"), 0);
    }
    free(back);
    free(desc);
    free(md);
    assert_int_equal(virDomainUndefine(dom), 0);
    virDomainFree(dom);
}

/*
 * Runs one hostile value through department_name, system_name and both, and checks the
 * output against the benign one.
 */
static void check_hostile(const Hostile *h)
{
    BrDomainSpec benign_spec = spec_for_libvirt();
    _cleanup_free_ char *benign = build(&benign_spec);
    _cleanup_doc_ xmlDocPtr benign_doc = parse_strict(benign);

    for (int field = 0; field < 3; field++) {
        BrDomainSpec spec = benign_spec;
        _cleanup_free_ char *xml = NULL, *dept = NULL, *sys = NULL, *desc = NULL;
        _cleanup_free_ char *want_desc = NULL, *md = NULL;
        const char *want_dept = field == 1 ? benign_spec.department_name : h->want;
        const char *want_sys = field == 0 ? benign_spec.system_name : h->want;
        int64_t d = 0, s = 0, a = 0, i = 0;

        if (field != 1)
            spec.department_name = h->input;
        if (field != 0)
            spec.system_name = h->input;
        xml = build(&spec);

        /* Well-formed, strictly. */
        _cleanup_doc_ xmlDocPtr doc = parse_strict(xml);
        /* Exactly the benign structure: nothing added, nothing moved into attributes. */
        same_structure(xmlDocGetRootElement(doc), xmlDocGetRootElement(benign_doc), "/");
        assert_int_equal(count_elements(xmlDocGetRootElement(doc), "disk"), 1);
        assert_int_equal(count_elements(xmlDocGetRootElement(doc), "devices"), 1);
        assert_int_equal(count_elements(xmlDocGetRootElement(doc), "description"), 1);
        /* The raw text too: no markup from the input survives as markup. */
        assert_non_null(strstr(xml, "<disk "));
        assert_null(strstr(strstr(xml, "<disk ") + 1, "<disk"));
        assert_null(strstr(xml, "<![CDATA["));

        /* The text is back where it belongs, as expected after sanitizing, and bounded. */
        xmlNodePtr inst = metadata_instance(doc);
        dept = text_of(child(inst, "department"));
        sys = text_of(child(inst, "system"));
        desc = text_of(child(xmlDocGetRootElement(doc), "description"));
        if (strcmp(dept, want_dept) != 0)
            fail_msg("%s via field %d: department text '%.200s' want '%.200s'", h->what, field,
                     dept, want_dept);
        assert_string_equal(sys, want_sys);
        assert_true(strlen(dept) <= TEXT_MAX && strlen(sys) <= TEXT_MAX);
        assert_true(asprintf(&want_desc,
                             "cloudbroker %s instance %u of allocation %" PRId64
                             "; department: %s; system: %s",
                             spec.purpose, spec.index, spec.allocation_id, want_dept,
                             want_sys) > 0);
        assert_string_equal(desc, want_desc);
        /* Escaping grows a byte to at most 5 ("&amp;", "&#13;"): four places of TEXT_MAX. */
        assert_true(strlen(xml) <= strlen(benign) + 4 * 5 * TEXT_MAX);

        /* The ids survive, read back the way the agent and the reconciler read them. */
        md = metadata_xml(doc);
        assert_int_equal(br_domain_metadata_parse(md, &d, &s, &a, &i), 0);
        assert_true(d == spec.department_id && s == spec.system_id && a == spec.allocation_id &&
                    i == spec.instance_id);

        expect_libvirt_accepts(xml, &spec, want_desc);
    }
}

static void test_hostile_text_markup(void **state)
{
    static const Hostile cases[] = {
        {"less-than", "<", "<"},
        {"apostrophe", "'", "'"},
        {"quote", "\"", "\""},
        {"ampersand", "&", "&"},
        {"CDATA end", "]]>", "]]>"},
        {"a disk element", "<disk type='file'><source file='/etc/shadow'/></disk>",
         "<disk type='file'><source file='/etc/shadow'/></disk>"},
        {"closing description", "</description><devices><disk type='file'/></devices>",
         "</description><devices><disk type='file'/></devices>"},
        {"entity references", "&lt;&#0;&xxe;&amp;", "&lt;&#0;&xxe;&amp;"},
        {"a DOCTYPE", "<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>&x;",
         "<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>&x;"},
        {"a CDATA section", "<![CDATA[<disk/>]]>", "<![CDATA[<disk/>]]>"},
        {"a comment and PI", "<!-- x --><?xml-stylesheet href='x'?>",
         "<!-- x --><?xml-stylesheet href='x'?>"},
        {"a namespace", "<cloudbroker:department id='999'/>", "<cloudbroker:department id='999'/>"},
    };
    for (size_t k = 0; k < ELEMENTSOF(cases); k++)
        check_hostile(&cases[k]);
}

static void test_hostile_text_characters(void **state)
{
    char ctl_in[32], ctl_want[32 * 3 + 1];
    static const char nul_middle[] = "ab\0<disk type='file'/>";

    controls(ctl_in, ctl_want);
    const Hostile cases[] = {
        {"C0 controls U+0001..U+001F", ctl_in, ctl_want},
        {"NUL in the middle", nul_middle, "ab"},
        {"invalid UTF-8", "\xc3\x28 \xff \xc0\xaf \xe6\x94",
         FFFD "( " FFFD " " FFFD FFFD " " FFFD FFFD},
        {"lone surrogate ED A0 80", "x\xed\xa0\x80y", "x" FFFD FFFD FFFD "y"},
        {"U+FFFE and U+FFFF",
         "a\xef\xbf\xbe"
         "b\xef\xbf\xbf",
         "a" FFFD "b" FFFD},
        {"CR alone", "a\rb", "a\rb"},
        {"U+2028 and RTL override",
         "a\xe2\x80\xa8\xe2\x80\xae"
         "b",
         "a\xe2\x80\xa8\xe2\x80\xae"
         "b"},
    };
    for (size_t k = 0; k < ELEMENTSOF(cases); k++)
        check_hostile(&cases[k]);
}

static void test_hostile_text_one_mib(void **state)
{
    _cleanup_free_ char *ascii = one_mib_of("<"), *ascii_want = repeat("<", TEXT_MAX);
    /* 3-byte characters: 1024 is not a multiple of 3, so the cut must fall before one. */
    _cleanup_free_ char *cjk = one_mib_of("政"), *cjk_want = repeat("政", TEXT_MAX / 3);
    _cleanup_free_ char *amp = one_mib_of("&"), *amp_want = repeat("&", TEXT_MAX);
    const Hostile cases[] = {
        {"1 MiB of '<'", ascii, ascii_want},
        {"1 MiB of a CJK character", cjk, cjk_want},
        {"1 MiB of '&'", amp, amp_want},
    };
    for (size_t k = 0; k < ELEMENTSOF(cases); k++)
        check_hostile(&cases[k]);
}

static void test_libvirt_accepts_benign(void **state)
{
    BrDomainSpec s = spec_for_libvirt();
    _cleanup_free_ char *xml = build(&s);
    _cleanup_free_ char *want = NULL;
    assert_true(asprintf(&want,
                         "cloudbroker trial instance 1 of allocation 5; department: %s; system: "
                         "%s",
                         s.department_name, s.system_name) > 0);
    expect_libvirt_accepts(xml, &s, want);
}

static int open_libvirt(void **state)
{
    conn = virConnectOpen("test:///default");
    if (!conn)
        return -1;
    return 0;
}

static int close_libvirt(void **state)
{
    if (conn)
        virConnectClose(conn);
    return 0;
}

static void quiet(void *opaque, virErrorPtr e)
{
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_kvm_production_network),
        cmocka_unit_test(test_golden_qemu_trial_no_network),
        cmocka_unit_test(test_golden_kvm_default_machine_raw),
        cmocka_unit_test(test_golden_escaping),
        cmocka_unit_test(test_kvm_and_qemu_differences),
        cmocka_unit_test(test_incomplete_spec_refused),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_metadata_parse_rejects),
        cmocka_unit_test(test_metadata_parse_rejects_empty_id),
        cmocka_unit_test(test_metadata_round_trip),
        cmocka_unit_test(test_metadata_parse_reads_libvirt_answer),
        cmocka_unit_test(test_libvirt_accepts_benign),
        cmocka_unit_test(test_hostile_text_markup),
        cmocka_unit_test(test_hostile_text_characters),
        cmocka_unit_test(test_hostile_text_one_mib),
    };
    virSetErrorFunc(NULL, quiet);
    return cmocka_run_group_tests(tests, open_libvirt, close_libvirt);
}
