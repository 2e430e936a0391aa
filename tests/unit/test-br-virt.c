/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The libvirt driver against libvirt's test driver. Most tests open the fixture host
 * tests/data/hosts/host-8cpu-16g.xml (8 CPUs, 16 GiB, pool "cb-images" with a 1 MiB raw base
 * volume, one foreign domain); each test gets a fresh copy of that host, since every open of a
 * fixture file starts from the file. Tests that must look at what the driver did from outside
 * (the volume XML, vCPU and memory figures) use test:///default, whose state one process shares
 * between connections, and look through a second, plain libvirt connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "br-domain-xml.h"
#include "br-virt-priv.h"
#include "br-virt.h"
#include "cm-cleanup.h"

#define FIXTURE_URI "test://" TEST_DATA_DIR "/hosts/host-8cpu-16g.xml"
#define FIXTURE_CPUS 8
#define FIXTURE_MEMORY_MIB 16384
#define FIXTURE_POOL "cb-images"
#define FIXTURE_BASE "base.raw"
#define FIXTURE_FOREIGN_UUID "0b5d1f0e-4c49-4a3a-9d3e-2f9a4f1e7c11"
#define DEFAULT_URI "test:///default"
#define DEFAULT_POOL "default-pool"

#define UUID_A "5d9e3a56-0c51-4d4e-b7a7-8b1e2f3c4d5e"
#define UUID_B "6e0f4b67-1d62-4e5f-88b8-9c2f3a4d5e6f"

static void expect_ok(int r, const CmError *err, const char *what)
{
    if (r < 0)
        fail_msg("%s: %d %s: %s", what, r, err->code, err->message);
}
#define OK(call)                                                                                   \
    do {                                                                                           \
        CmError e_ = {0};                                                                          \
        CmError *oe = &e_; /* the error of the call, named in it */                                \
        expect_ok((call), &e_, #call);                                                             \
        (void)oe;                                                                                  \
    } while (0)

/* ---- fixtures ---- */

typedef struct {
    BrVirtConn *c;
    virConnectPtr witness; /* only for test:///default */
} Fx;

static int open_fixture(void **state)
{
    Fx *fx = calloc(1, sizeof(*fx));
    CmError err = {0};
    if (!fx || br_virt_init(&err) < 0 || br_virt_open(FIXTURE_URI, 5, 3, &fx->c, &err) < 0) {
        fprintf(stderr, "cannot open %s: %s\n", FIXTURE_URI, err.message);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int open_default(void **state)
{
    Fx *fx = calloc(1, sizeof(*fx));
    CmError err = {0};
    if (!fx || br_virt_init(&err) < 0 || br_virt_open(DEFAULT_URI, 5, 3, &fx->c, &err) < 0) {
        free(fx);
        return -1;
    }
    fx->witness = virConnectOpen(DEFAULT_URI);
    if (!fx->witness) {
        br_virt_close(fx->c);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int close_fixture(void **state)
{
    Fx *fx = *state;
    if (fx->witness) {
        /* test:///default outlives the test: leave it as found. */
        static const char *const uuids[] = {UUID_A, UUID_B};
        for (size_t i = 0; i < ELEMENTSOF(uuids); i++) {
            virDomainPtr d = virDomainLookupByUUIDString(fx->witness, uuids[i]);
            if (d) {
                virDomainDestroy(d);
                virDomainUndefine(d);
                virDomainFree(d);
            }
        }
        virStoragePoolPtr p = virStoragePoolLookupByName(fx->witness, DEFAULT_POOL);
        static const char *const vols[] = {"base.raw", "cb-1-0.qcow2"};
        for (size_t i = 0; p && i < ELEMENTSOF(vols); i++) {
            virStorageVolPtr v = virStorageVolLookupByName(p, vols[i]);
            if (v) {
                virStorageVolDelete(v, 0);
                virStorageVolFree(v);
            }
        }
        if (p)
            virStoragePoolFree(p);
        virConnectClose(fx->witness);
    }
    assert_null(br_virt_close(fx->c));
    free(fx);
    return 0;
}

/* A domain of ours for this connection's hypervisor, as the broker would build it. */
static char *domain_xml(BrVirtConn *c, const char *uuid, int64_t instance_id, unsigned vcpus,
                        unsigned max_vcpus, uint64_t mem, uint64_t max_mem)
{
    char name[32];
    BrDomainSpec s = {
        .name = name,
        .uuid = uuid,
        .domain_type = br_virt_domain_type(c),
        .arch = "x86_64",
        .vcpus = vcpus,
        .max_vcpus = max_vcpus,
        .memory_mib = mem,
        .max_memory_mib = max_mem,
        .pool = FIXTURE_POOL,
        .volume = "cb-1-0.qcow2",
        .disk_format = "qcow2",
        .department_id = 3,
        .system_id = 7,
        .allocation_id = 12,
        .instance_id = instance_id,
        .request_id = 9,
        .index = 0,
        .purpose = "production",
        .department_name = "民政局",
        .system_name = "网上办事大厅",
    };
    CmError err = {0};
    char *xml = NULL;
    snprintf(name, sizeof(name), "cb-12-%lld", (long long)instance_id);
    if (br_domain_xml_build(&s, &xml, &err) < 0)
        fail_msg("br_domain_xml_build: %s", err.message);
    return xml;
}

static BrVirtState state_of(BrVirtConn *c, const char *uuid)
{
    BrVirtState st = BR_VIRT_STATE_OTHER;
    CmError err = {0};
    assert_int_equal(br_virt_domain_state(c, uuid, &st, &err), 0);
    return st;
}

/* How many domains the host has, and how many with @uuid. */
static size_t count_domains(BrVirtConn *c, const char *uuid, size_t *ret_with_uuid)
{
    BrVirtDomain *list = NULL;
    size_t n = 0, k = 0;
    CmError err = {0};
    expect_ok(br_virt_list_domains(c, &list, &n, &err), &err, "br_virt_list_domains");
    for (size_t i = 0; i < n; i++)
        k += strcmp(list[i].uuid, uuid) == 0;
    free(list);
    *ret_with_uuid = k;
    return n;
}

static uint64_t pool_allocation_gib(BrVirtConn *c)
{
    BrVirtPoolInfo info = {0};
    OK(br_virt_pool_info(c, FIXTURE_POOL, &info, oe));
    return info.allocation_gib;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- what `domain_type: auto` takes ----
 * The fixtures are what libvirt 9.0 answered on a virtual machine (AMD EPYC, no nested
 * virtualization) whose /dev/kvm opens and whose libvirt offers KVM, but where QEMU aborts
 * on the host-model CPU ("failed to set MSR 0x10a"). */

static char *read_data(const char *name)
{
    char path[512];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/virt/%s", TEST_DATA_DIR, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* @text with the first @from replaced by @to (which must be there). */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    size_t head, n;
    char *out;

    assert_non_null(at);
    head = (size_t)(at - text);
    n = strlen(text) - strlen(from) + strlen(to);
    out = calloc(1, n + 1);
    assert_non_null(out);
    memcpy(out, text, head);
    memcpy(out + head, to, strlen(to));
    memcpy(out + head + strlen(to), at + strlen(from), strlen(at + strlen(from)));
    return out;
}

static void test_kvm_without_vt_extensions_is_not_usable(void **state)
{
    _cleanup_free_ char *domcaps = read_data("domcaps-kvm-no-vt.xml");
    _cleanup_free_ char *caps = read_data("caps-amd-no-vt.xml");
    char note[256] = "x";

    (void)state;
    /* This machine: /dev/kvm opens, libvirt offers KVM, the CPU has no svm. */
    assert_false(br_virt_kvm_usable(domcaps, caps, 0, note, sizeof(note)));
    assert_string_equal(note,
                        "the host CPU has no virtualization extensions (neither vmx nor svm)");
}

static void test_kvm_with_vt_extensions_is_usable(void **state)
{
    _cleanup_free_ char *domcaps = read_data("domcaps-kvm-no-vt.xml");
    _cleanup_free_ char *caps = read_data("caps-amd-no-vt.xml");
    _cleanup_free_ char *svm =
        replace(caps, "<feature name='vme'/>", "<feature name='vme'/><feature name='svm'/>");
    _cleanup_free_ char *vmx =
        replace(caps, "<feature name='vme'/>", "<feature name='vmx'/><feature name='vme'/>");
    char note[256] = "x";

    (void)state;
    assert_true(br_virt_kvm_usable(domcaps, svm, 0, note, sizeof(note)));
    assert_string_equal(note, "");
    assert_true(br_virt_kvm_usable(domcaps, vmx, 0, note, sizeof(note)));
    /* A remote host (not checked) and a broker user that may not open /dev/kvm: libvirt's
     * answer stands. */
    assert_true(br_virt_kvm_usable(domcaps, svm, 1, note, sizeof(note)));
    assert_true(br_virt_kvm_usable(domcaps, svm, -EACCES, note, sizeof(note)));
    assert_true(br_virt_kvm_usable(domcaps, svm, -EPERM, note, sizeof(note)));
    /* A local /dev/kvm that is missing or does not answer. */
    assert_false(br_virt_kvm_usable(domcaps, svm, -ENOENT, note, sizeof(note)));
    assert_non_null(strstr(note, "/dev/kvm does not work"));
    assert_false(br_virt_kvm_usable(domcaps, svm, -ENOTSUP, note, sizeof(note)));
}

static void test_kvm_needs_the_domain_capabilities(void **state)
{
    _cleanup_free_ char *domcaps = read_data("domcaps-kvm-no-vt.xml");
    _cleanup_free_ char *caps = read_data("caps-amd-no-vt.xml");
    _cleanup_free_ char *svm =
        replace(caps, "<feature name='vme'/>", "<feature name='vme'/><feature name='svm'/>");
    _cleanup_free_ char *no_host_model =
        replace(domcaps, "<mode name='host-model' supported='yes'>",
                "<mode name='host-model' supported='no'>");
    _cleanup_free_ char *tcg = replace(domcaps, "<domain>kvm</domain>", "<domain>qemu</domain>");
    char note[256];

    (void)state;
    assert_false(br_virt_kvm_usable(NULL, svm, 0, note, sizeof(note)));
    assert_string_equal(note, "libvirt offers no KVM domain capabilities");
    assert_false(br_virt_kvm_usable(no_host_model, svm, 0, note, sizeof(note)));
    assert_string_equal(note, "KVM offers no host-model CPU");
    assert_false(br_virt_kvm_usable(tcg, svm, 0, note, sizeof(note)));
    assert_false(br_virt_kvm_usable("<not xml", svm, 0, note, sizeof(note)));
    assert_false(br_virt_kvm_usable(domcaps, NULL, 0, note, sizeof(note)));
    assert_string_equal(note, "the host's capabilities are unreadable");
}

static void test_kvm_on_other_architectures_needs_no_vmx(void **state)
{
    _cleanup_free_ char *domcaps = read_data("domcaps-kvm-no-vt.xml");
    _cleanup_free_ char *caps = read_data("caps-amd-no-vt.xml");
    _cleanup_free_ char *arm = replace(caps, "<arch>x86_64</arch>", "<arch>aarch64</arch>");
    char note[256];

    (void)state;
    assert_true(br_virt_kvm_usable(domcaps, arm, 0, note, sizeof(note)));
}

static void test_local_uris(void **state)
{
    (void)state;
    assert_true(br_virt_uri_is_local("qemu:///system"));
    assert_true(br_virt_uri_is_local("qemu:///session?socket=/tmp/x/libvirt-sock"));
    assert_true(br_virt_uri_is_local("qemu+unix:///system"));
    assert_false(br_virt_uri_is_local("qemu+tls://hv01.example/system"));
    assert_false(br_virt_uri_is_local("qemu+ssh://root@hv01/system"));
    assert_false(br_virt_uri_is_local("qemu://hv01/system"));
    assert_false(br_virt_uri_is_local("test:///default"));
}

static void test_kvm_device_check(void **state)
{
    (void)state;
    assert_int_equal(br_virt_kvm_device_check("/nonexistent/kvm"), -ENOENT);
    /* Not a KVM device: opens, but does not answer KVM's API version. */
    assert_true(br_virt_kvm_device_check("/dev/null") < 0);
}

/* ---- connection ---- */

static void test_init_is_idempotent(void **state)
{
    CmError err = {0};
    assert_int_equal(br_virt_init(&err), 0);
    assert_int_equal(br_virt_init(&err), 0);
}

static void test_open_fixture(void **state)
{
    Fx *fx = *state;
    assert_string_equal(br_virt_domain_type(fx->c), "test");
    assert_string_equal(br_virt_hypervisor(fx->c), "test");
    assert_string_equal(br_virt_domain_type_note(fx->c), "");
    assert_true(br_virt_alive(fx->c));
    assert_false(br_virt_alive(NULL));
    assert_null(br_virt_close(NULL));
}

static void test_open_failure_is_reported(void **state)
{
    BrVirtConn *c = (BrVirtConn *)0x1;
    CmError err = {0};
    int r = br_virt_open("test://" TEST_DATA_DIR "/hosts/no-such-host.xml", 5, 3, &c, &err);
    assert_true(r < 0);
    assert_ptr_equal(c, (BrVirtConn *)0x1); /* untouched */
    assert_true(cm_error_is_set(&err));
    assert_non_null(strstr(err.message, "cannot connect"));
    assert_non_null(strstr(err.message, "no-such-host.xml"));
}

static void test_state_names(void **state)
{
    assert_string_equal(br_virt_state_to_string(BR_VIRT_STATE_ABSENT), "absent");
    assert_string_equal(br_virt_state_to_string(BR_VIRT_STATE_RUNNING), "running");
    assert_string_equal(br_virt_state_to_string(BR_VIRT_STATE_PAUSED), "paused");
    assert_string_equal(br_virt_state_to_string(BR_VIRT_STATE_SHUTOFF), "shutoff");
    assert_string_equal(br_virt_state_to_string(BR_VIRT_STATE_OTHER), "other");
    assert_string_equal(br_virt_state_to_string((BrVirtState)42), "other");
}

/* ---- capacity ---- */

static void test_node_info_matches_fixture(void **state)
{
    Fx *fx = *state;
    BrVirtNodeInfo info = {0};
    OK(br_virt_node_info(fx->c, &info, oe));
    assert_int_equal(info.cpus, FIXTURE_CPUS);
    assert_int_equal(info.memory_mib, FIXTURE_MEMORY_MIB);
}

static void test_pool_info_matches_fixture(void **state)
{
    Fx *fx = *state;
    BrVirtPoolInfo info = {0};
    OK(br_virt_pool_info(fx->c, FIXTURE_POOL, &info, oe));
    /* The test driver gives every pool 100 GiB; the 1 MiB base rounds down to 0 GiB used. */
    assert_int_equal(info.capacity_gib, 100);
    assert_int_equal(info.allocation_gib, 0);
    assert_int_equal(info.available_gib, 99);
}

static void expect_no_pool(int r, const CmError *err)
{
    assert_int_equal(r, -ENOENT);
    assert_string_equal(err->code, "no_storage_pool");
    assert_string_equal(err->field, "pool");
    assert_non_null(strstr(err->message, "storage pool 'nope' not found"));
    assert_non_null(strstr(err->message, FIXTURE_URI));
}

static void test_unknown_pool_is_a_clear_error(void **state)
{
    Fx *fx = *state;
    BrVirtPoolInfo info;
    CmError err = {0};

    expect_no_pool(br_virt_pool_info(fx->c, "nope", &info, &err), &err);
    cm_error_clear(&err);
    expect_no_pool(br_virt_volume_exists(fx->c, "nope", "v", &err), &err);
    cm_error_clear(&err);
    expect_no_pool(br_virt_volume_create(fx->c, "nope", "v", 1, FIXTURE_BASE, "raw", &err), &err);
    cm_error_clear(&err);
    expect_no_pool(br_virt_volume_resize(fx->c, "nope", "v", 1, &err), &err);
    cm_error_clear(&err);
    expect_no_pool(br_virt_volume_wipe(fx->c, "nope", "v", &err), &err);
    cm_error_clear(&err);
    expect_no_pool(br_virt_volume_delete(fx->c, "nope", "v", &err), &err);
}

/* ---- volumes ---- */

static void test_volume_create_is_idempotent(void **state)
{
    Fx *fx = *state;
    CmError err = {0};

    assert_int_equal(br_virt_volume_exists(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", &err), 0);
    OK(br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 2, FIXTURE_BASE, "raw", oe));
    assert_int_equal(br_virt_volume_exists(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", &err), 1);
    assert_int_equal(pool_allocation_gib(fx->c), 2);
    /* A retried step: nothing new, not even with other figures. */
    OK(br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 2, FIXTURE_BASE, "raw", oe));
    OK(br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 5, FIXTURE_BASE, "raw", oe));
    assert_int_equal(pool_allocation_gib(fx->c), 2);
    /* A second name is a second volume. */
    OK(br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-1.qcow2", 3, FIXTURE_BASE, "raw", oe));
    assert_int_equal(pool_allocation_gib(fx->c), 5);
}

static void test_volume_create_needs_the_base(void **state)
{
    Fx *fx = *state;
    CmError err = {0};
    int r = br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 2, "debian-13.qcow2",
                                  "qcow2", &err);
    assert_true(r < 0);
    assert_int_equal(err.kind, CM_ERROR_UNPROCESSABLE);
    assert_string_equal(err.code, "no_base_image");
    assert_string_equal(err.field, "image");
    assert_non_null(strstr(err.message, "base volume 'debian-13.qcow2' not found in pool"));
    assert_int_equal(br_virt_volume_exists(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", &err), 0);
}

/* libvirt's reason reaches the error: the test driver refuses a volume larger than its pool. */
static void test_volume_create_refusal_names_the_cause(void **state)
{
    Fx *fx = *state;
    CmError err = {0};
    int r =
        br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 1000, FIXTURE_BASE, "raw", &err);
    assert_int_equal(r, -EIO);
    assert_string_equal(err.code, "hypervisor_error");
    assert_non_null(strstr(err.message, "cannot create volume: "));
    if (strstr(err.message, "unknown libvirt error") || !strstr(err.message, "space"))
        fail_msg("libvirt's reason is lost: %s", err.message);
    assert_int_equal(br_virt_volume_exists(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", &err), 0);
}

static char *xpath_text(xmlDocPtr doc, const char *a, const char *b, const char *attr)
{
    xmlNodePtr n = xmlDocGetRootElement(doc);
    const char *path[2] = {a, b};
    for (int k = 0; k < 2 && n && path[k]; k++) {
        xmlNodePtr c = n->children;
        while (c && !(c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST path[k]) == 0))
            c = c->next;
        n = c;
    }
    if (!n)
        return NULL;
    xmlChar *v = attr ? xmlGetProp(n, BAD_CAST attr) : xmlNodeGetContent(n);
    char *s = v ? strdup((const char *)v) : NULL;
    xmlFree(v);
    return s;
}

/* What the driver asks libvirt for: a qcow2 overlay on the base, at the capacity asked. */
static void test_volume_is_an_overlay_on_the_base(void **state)
{
    Fx *fx = *state;
    virStoragePoolPtr pool = virStoragePoolLookupByName(fx->witness, DEFAULT_POOL);
    virStorageVolPtr base, vol;
    char *base_path, *xml;
    const char *base_xml = "<volume><name>base.raw</name><capacity unit='bytes'>1048576"
                           "</capacity><target><format type='raw'/></target></volume>";
    assert_non_null(pool);
    base = virStorageVolCreateXML(pool, base_xml, 0);
    assert_non_null(base);
    base_path = virStorageVolGetPath(base);

    OK(br_virt_volume_create(fx->c, DEFAULT_POOL, "cb-1-0.qcow2", 2, "base.raw", "raw", oe));
    vol = virStorageVolLookupByName(pool, "cb-1-0.qcow2");
    assert_non_null(vol);
    xml = virStorageVolGetXMLDesc(vol, 0);
    {
        xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "vol.xml", NULL, XML_PARSE_NONET);
        _cleanup_free_ char *fmt = xpath_text(doc, "target", "format", "type");
        _cleanup_free_ char *cap = xpath_text(doc, "capacity", NULL, NULL);
        _cleanup_free_ char *bpath = xpath_text(doc, "backingStore", "path", NULL);
        _cleanup_free_ char *bfmt = xpath_text(doc, "backingStore", "format", "type");
        assert_non_null(doc);
        assert_string_equal(fmt, "qcow2");
        assert_string_equal(cap, "2147483648");
        assert_string_equal(bpath, base_path);
        assert_string_equal(bfmt, "raw");
        xmlFreeDoc(doc);
    }
    free(xml);
    free(base_path);
    virStorageVolFree(vol);
    virStorageVolFree(base);
    virStoragePoolFree(pool);
}

static void test_volume_delete_is_idempotent(void **state)
{
    Fx *fx = *state;
    CmError err = {0};
    OK(br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 2, FIXTURE_BASE, "raw", oe));
    OK(br_virt_volume_delete(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", oe));
    assert_int_equal(br_virt_volume_exists(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", &err), 0);
    assert_int_equal(pool_allocation_gib(fx->c), 0);
    OK(br_virt_volume_delete(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", oe));
    /* The base stays. */
    assert_int_equal(br_virt_volume_exists(fx->c, FIXTURE_POOL, FIXTURE_BASE, &err), 1);
}

/*
 * The test driver implements neither virStorageVolResize nor virStorageVolWipe, which makes
 * both a probe: a call that reaches libvirt fails, so one that returns 0 did not reach it.
 */
static void test_volume_resize_never_shrinks(void **state)
{
    Fx *fx = *state;
    CmError err = {0};
    int r;

    OK(br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 2, FIXTURE_BASE, "raw", oe));
    OK(br_virt_volume_resize(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 1, oe)); /* smaller: no-op */
    OK(br_virt_volume_resize(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 2, oe)); /* same: no-op */
    /* Growing reaches libvirt; its refusal comes back named. */
    r = br_virt_volume_resize(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 4, &err);
    assert_int_equal(r, -EIO);
    assert_string_equal(err.code, "hypervisor_error");
    assert_non_null(strstr(err.message, "cannot grow volume: "));
    /* A missing volume is an error, not a silent success. */
    cm_error_clear(&err);
    assert_true(br_virt_volume_resize(fx->c, FIXTURE_POOL, "cb-9-9.qcow2", 4, &err) < 0);
    assert_non_null(strstr(err.message, "cb-9-9.qcow2"));
}

static void test_volume_wipe_of_a_missing_volume_is_done(void **state)
{
    Fx *fx = *state;
    CmError err = {0};
    int r;

    OK(br_virt_volume_wipe(fx->c, FIXTURE_POOL, "cb-9-9.qcow2", oe));
    OK(br_virt_volume_create(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", 2, FIXTURE_BASE, "raw", oe));
    r = br_virt_volume_wipe(fx->c, FIXTURE_POOL, "cb-1-0.qcow2", &err);
    assert_int_equal(r, -EIO);
    assert_non_null(strstr(err.message, "cannot wipe volume: "));
}

/* ---- domains ---- */

static void test_define_is_idempotent_by_uuid(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    _cleanup_free_ char *other = domain_xml(fx->c, UUID_A, 40, 2, 4, 1024, 2048);
    size_t with = 0;

    assert_int_equal(count_domains(fx->c, UUID_A, &with), 1); /* the foreign one */
    assert_int_equal(with, 0);
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_ABSENT);
    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    assert_int_equal(count_domains(fx->c, UUID_A, &with), 2);
    assert_int_equal(with, 1);
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_SHUTOFF);
    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_domain_define(fx->c, UUID_A, other, oe));
    assert_int_equal(count_domains(fx->c, UUID_A, &with), 2);
    assert_int_equal(with, 1);
}

/* Define keeps the first definition; redefine replaces it. */
static void test_define_keeps_redefine_replaces(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    _cleanup_free_ char *bigger = domain_xml(fx->c, UUID_A, 40, 2, 4, 1024, 2048);
    virDomainPtr d;
    virDomainInfo info;

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_domain_define(fx->c, UUID_A, bigger, oe));
    d = virDomainLookupByUUIDString(fx->witness, UUID_A);
    assert_non_null(d);
    assert_int_equal(virDomainGetInfo(d, &info), 0);
    assert_int_equal(info.nrVirtCpu, 1);
    assert_int_equal(info.maxMem, 1024 * 1024);
    OK(br_virt_domain_redefine(fx->c, bigger, oe));
    assert_int_equal(virDomainGetInfo(d, &info), 0);
    assert_int_equal(info.nrVirtCpu, 2);
    assert_int_equal(info.maxMem, 2048 * 1024);
    virDomainFree(d);
}

static void test_define_refused_is_reported(void **state)
{
    Fx *fx = *state;
    CmError err = {0};
    int r = br_virt_domain_define(fx->c, UUID_B, "<domain type='test'><name>x</name>", &err);
    assert_int_equal(r, -EIO);
    assert_int_equal(err.kind, CM_ERROR_INTERNAL);
    assert_string_equal(err.code, "hypervisor_error");
    assert_non_null(strstr(err.message, "cannot define domain: "));
    assert_int_equal(state_of(fx->c, UUID_B), BR_VIRT_STATE_ABSENT);
}

static void test_start_is_idempotent(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    CmError err = {0};

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_RUNNING);
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_RUNNING);
    /* Starting what was never defined is an error that says so. */
    assert_int_equal(br_virt_domain_start(fx->c, UUID_B, &err), -ENOENT);
    assert_string_equal(err.code, "domain_missing");
    assert_non_null(strstr(err.message, UUID_B));
}

/* A paused domain is resumed, not started again. */
static void test_start_resumes_a_paused_domain(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    virDomainPtr d;

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    d = virDomainLookupByUUIDString(fx->witness, UUID_A);
    assert_non_null(d);
    assert_int_equal(virDomainSuspend(d), 0);
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_PAUSED);
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_RUNNING);
    virDomainFree(d);
}

static void test_shutdown_graceful(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    bool forced = true;
    double t0;

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    /* The test driver's guests obey at once: no waiting for the timeout, nothing forced. */
    t0 = now_s();
    OK(br_virt_domain_shutdown(fx->c, UUID_A, 5000, &forced, oe));
    assert_true(now_s() - t0 < 1.0);
    assert_false(forced);
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_SHUTOFF);
    /* Again, and for a domain that is not there: nothing to do. */
    forced = true;
    OK(br_virt_domain_shutdown(fx->c, UUID_A, 5000, &forced, oe));
    assert_false(forced);
    forced = true;
    OK(br_virt_domain_shutdown(fx->c, UUID_B, 5000, &forced, oe));
    assert_false(forced);
    OK(br_virt_domain_shutdown(fx->c, UUID_B, 5000, NULL, oe));
}

static void test_undefine_is_idempotent(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    size_t with = 0;

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    /* A running domain is forced off first. */
    OK(br_virt_domain_undefine(fx->c, UUID_A, oe));
    assert_int_equal(state_of(fx->c, UUID_A), BR_VIRT_STATE_ABSENT);
    assert_int_equal(count_domains(fx->c, UUID_A, &with), 1);
    assert_int_equal(with, 0);
    OK(br_virt_domain_undefine(fx->c, UUID_A, oe));
    OK(br_virt_domain_undefine(fx->c, UUID_B, oe));
}

static void test_set_vcpus_within_max(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 4, 512, 1024);
    virDomainPtr d;
    CmError err = {0};

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    d = virDomainLookupByUUIDString(fx->witness, UUID_A);
    assert_non_null(d);
    /* Stopped: the persistent config changes. */
    OK(br_virt_domain_set_vcpus(fx->c, UUID_A, 2, oe));
    assert_int_equal(virDomainGetVcpusFlags(d, VIR_DOMAIN_AFFECT_CONFIG), 2);
    /* Running: live and config both. */
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    OK(br_virt_domain_set_vcpus(fx->c, UUID_A, 4, oe));
    assert_int_equal(virDomainGetVcpusFlags(d, VIR_DOMAIN_AFFECT_LIVE), 4);
    assert_int_equal(virDomainGetVcpusFlags(d, VIR_DOMAIN_AFFECT_CONFIG), 4);
    /* Past the maximum set at define time: refused, nothing changed. */
    assert_int_equal(br_virt_domain_set_vcpus(fx->c, UUID_A, 5, &err), -EIO);
    assert_non_null(strstr(err.message, "cannot set vCPUs: "));
    assert_int_equal(virDomainGetVcpusFlags(d, VIR_DOMAIN_AFFECT_LIVE), 4);
    cm_error_clear(&err);
    assert_int_equal(br_virt_domain_set_vcpus(fx->c, UUID_B, 2, &err), -ENOENT);
    assert_non_null(strstr(err.message, UUID_B));
    virDomainFree(d);
}

static void test_set_memory_stopped(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    virDomainPtr d;
    virDomainInfo info;
    CmError err = {0};

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    d = virDomainLookupByUUIDString(fx->witness, UUID_A);
    assert_non_null(d);
    OK(br_virt_domain_set_memory(fx->c, UUID_A, 1024, oe));
    assert_int_equal(virDomainGetInfo(d, &info), 0);
    assert_int_equal(info.memory, 1024 * 1024);
    assert_int_equal(br_virt_domain_set_memory(fx->c, UUID_A, 2048, &err), -EIO);
    assert_non_null(strstr(err.message, "cannot set memory: "));
    cm_error_clear(&err);
    assert_int_equal(br_virt_domain_set_memory(fx->c, UUID_B, 512, &err), -ENOENT);
    virDomainFree(d);
}

static void test_set_memory_running(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    virDomainPtr d;
    virDomainInfo info;

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_domain_start(fx->c, UUID_A, oe));
    d = virDomainLookupByUUIDString(fx->witness, UUID_A);
    assert_non_null(d);
    OK(br_virt_domain_set_memory(fx->c, UUID_A, 1024, oe));
    assert_int_equal(virDomainGetInfo(d, &info), 0);
    assert_int_equal(info.memory, 1024 * 1024);
    virDomainFree(d);
}

static void test_grow_disk_of_a_stopped_domain_waits(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    /* Not running (or absent): the new size is seen at the next start. */
    OK(br_virt_domain_grow_disk(fx->c, UUID_A, 8, oe));
    OK(br_virt_domain_grow_disk(fx->c, UUID_B, 8, oe));
}

static void test_list_ours_and_foreign(void **state)
{
    Fx *fx = *state;
    _cleanup_free_ char *xml = domain_xml(fx->c, UUID_A, 40, 1, 2, 512, 1024);
    BrVirtDomain *list = NULL;
    size_t n = 0;
    const BrVirtDomain *ours = NULL, *foreign = NULL;

    OK(br_virt_domain_define(fx->c, UUID_A, xml, oe));
    OK(br_virt_list_domains(fx->c, &list, &n, oe));
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].uuid, UUID_A) == 0)
            ours = &list[i];
        else if (strcmp(list[i].uuid, FIXTURE_FOREIGN_UUID) == 0)
            foreign = &list[i];
    }
    if (!ours || !foreign)
        fail_msg("listed %zu domains without ours or the foreign one", n);
    assert_string_equal(foreign->name, "foreign-vm");
    assert_int_equal(foreign->state, BR_VIRT_STATE_RUNNING);
    assert_false(foreign->ours);
    assert_string_equal(ours->name, "cb-12-40");
    assert_int_equal(ours->state, BR_VIRT_STATE_SHUTOFF);
    if (!ours->ours)
        fail_msg("the broker's own domain is listed as foreign (metadata not recognised)");
    assert_int_equal(ours->department_id, 3);
    assert_int_equal(ours->system_id, 7);
    assert_int_equal(ours->allocation_id, 12);
    assert_int_equal(ours->instance_id, 40);
    free(list);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, open_fixture, close_fixture)
#define DF(t) cmocka_unit_test_setup_teardown(t, open_default, close_fixture)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_idempotent),
        FX(test_open_fixture),
        cmocka_unit_test(test_open_failure_is_reported),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_kvm_without_vt_extensions_is_not_usable),
        cmocka_unit_test(test_kvm_with_vt_extensions_is_usable),
        cmocka_unit_test(test_kvm_needs_the_domain_capabilities),
        cmocka_unit_test(test_kvm_on_other_architectures_needs_no_vmx),
        cmocka_unit_test(test_local_uris),
        cmocka_unit_test(test_kvm_device_check),
        FX(test_node_info_matches_fixture),
        FX(test_pool_info_matches_fixture),
        FX(test_unknown_pool_is_a_clear_error),
        FX(test_volume_create_is_idempotent),
        FX(test_volume_create_needs_the_base),
        FX(test_volume_create_refusal_names_the_cause),
        DF(test_volume_is_an_overlay_on_the_base),
        FX(test_volume_delete_is_idempotent),
        FX(test_volume_resize_never_shrinks),
        FX(test_volume_wipe_of_a_missing_volume_is_done),
        FX(test_define_is_idempotent_by_uuid),
        DF(test_define_keeps_redefine_replaces),
        FX(test_define_refused_is_reported),
        FX(test_start_is_idempotent),
        DF(test_start_resumes_a_paused_domain),
        FX(test_shutdown_graceful),
        FX(test_undefine_is_idempotent),
        DF(test_set_vcpus_within_max),
        DF(test_set_memory_stopped),
        DF(test_set_memory_running),
        FX(test_grow_disk_of_a_stopped_domain_waits),
        FX(test_list_ours_and_foreign),
    };
    CmError err = {0};
    /* br_virt_init() silences libvirt's own printing, as the broker runs. */
    if (br_virt_init(&err) < 0) {
        fprintf(stderr, "br_virt_init: %s\n", err.message);
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
