/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <linux/kvm.h>

#include "br-domain-xml.h"
#include "br-virt-priv.h"
#include "br-virt.h"
#include "cm-cleanup.h"
#include "cm-log.h"

struct BrVirtConn {
    virConnectPtr conn;
    atomic_bool lost;
    char *uri;
    char hypervisor[8];    /* what libvirt offers: kvm, qemu or test */
    char domain_type[8];   /* what `auto` takes: kvm only when it really works */
    char domain_note[256]; /* why KVM is not taken although offered, or "" */
};

static void domain_freep(virDomainPtr *d)
{
    if (*d)
        virDomainFree(*d);
}
static void pool_freep(virStoragePoolPtr *p)
{
    if (*p)
        virStoragePoolFree(*p);
}
static void vol_freep(virStorageVolPtr *v)
{
    if (*v)
        virStorageVolFree(*v);
}
#define _cleanup_domain_ _cleanup_(domain_freep)
#define _cleanup_pool_ _cleanup_(pool_freep)
#define _cleanup_vol_ _cleanup_(vol_freep)

const char *br_virt_state_to_string(BrVirtState s)
{
    static const char *const names[] = {"absent", "running", "paused", "shutoff", "other"};
    return (unsigned)s < ELEMENTSOF(names) ? names[s] : "other";
}

/* libvirt errors are thread-local: read them right here, on the thread that failed. */
static int virt_error(CmError *err, const char *what)
{
    virErrorPtr e = virGetLastError();
    int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
    const char *msg = e && e->message ? e->message : "unknown libvirt error";
    bool lost = code == VIR_ERR_SYSTEM_ERROR || code == VIR_ERR_RPC || code == VIR_ERR_NO_CONNECT ||
                code == VIR_ERR_INVALID_CONN || code == VIR_ERR_AUTH_FAILED ||
                code == VIR_ERR_OPERATION_TIMEOUT;

    cm_error_set_code(err, lost ? CM_ERROR_UNAVAILABLE : CM_ERROR_INTERNAL,
                      lost ? "hypervisor_unavailable" : "hypervisor_error", "", "%s: %s", what,
                      msg);
    virResetLastError();
    return lost ? -EAGAIN : -EIO;
}

static bool last_error_is(int code)
{
    virErrorPtr e = virGetLastError();
    bool is = e && e->code == code;
    if (is)
        virResetLastError();
    return is;
}

static void quiet_error_handler(void *opaque, virErrorPtr error)
{
    (void)opaque;
    (void)error;
}

static void *event_loop(void *arg)
{
    (void)arg;
    for (;;)
        if (virEventRunDefaultImpl() < 0)
            cm_log_warning("libvirt event loop: %s", virGetLastErrorMessage());
    return NULL;
}

static int init_result = -1;

static void init_once(void)
{
    pthread_t t;
    virSetErrorFunc(NULL, quiet_error_handler);
    if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0 ||
        pthread_create(&t, NULL, event_loop, NULL) != 0)
        return;
    pthread_detach(t);
    init_result = 0;
}

int br_virt_init(CmError *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    if (init_result < 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot start libvirt's event loop");
    return 0;
}

static void close_callback(virConnectPtr conn, int reason, void *opaque)
{
    BrVirtConn *c = opaque;
    (void)conn;
    atomic_store(&c->lost, true);
    cm_log_warning("libvirt connection to %s closed (reason %d)", c->uri, reason);
}

/* Counts the nodes @expr finds in @doc; < 0 when @doc is NULL or the expression fails. */
static int xpath_count(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx;
    xmlXPathObjectPtr obj;
    int n = -1;

    if (!doc)
        return -1;
    ctx = xmlXPathNewContext(doc);
    if (!ctx)
        return -1;
    obj = xmlXPathEvalExpression(BAD_CAST expr, ctx);
    if (obj && obj->type == XPATH_NODESET)
        n = obj->nodesetval ? obj->nodesetval->nodeNr : 0;
    xmlXPathFreeObject(obj);
    xmlXPathFreeContext(ctx);
    return n;
}

static xmlDocPtr xml_read(const char *text)
{
    if (!text)
        return NULL;
    return xmlReadMemory(text, (int)strlen(text), "libvirt.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

bool br_virt_kvm_usable(const char *domcaps, const char *caps, int kvm_dev, char *note,
                        size_t note_size)
{
    xmlDocPtr dc = NULL, hc = NULL;
    bool usable = false;
    int x86;

    snprintf(note, note_size, "%s", "");
    if (!domcaps) {
        snprintf(note, note_size, "libvirt offers no KVM domain capabilities");
        return false;
    }
    dc = xml_read(domcaps);
    hc = xml_read(caps);
    if (xpath_count(dc, "/domainCapabilities[domain='kvm']") != 1) {
        snprintf(note, note_size, "libvirt's KVM domain capabilities are unreadable");
        goto cleanup;
    }
    /* Our KVM domains ask for the host-model CPU. */
    if (xpath_count(dc, "/domainCapabilities/cpu/mode[@name='host-model'][@supported='yes']") !=
        1) {
        snprintf(note, note_size, "KVM offers no host-model CPU");
        goto cleanup;
    }
    /* On x86, KVM needs the CPU's virtualization extensions (Intel VT-x: vmx, AMD-V: svm).
     * A virtual machine without nested virtualization may still have a /dev/kvm and a libvirt
     * that offers KVM, and QEMU then fails when it starts the guest. */
    x86 = xpath_count(hc, "/capabilities/host/cpu[arch='x86_64' or arch='i686']");
    if (x86 < 0) {
        snprintf(note, note_size, "the host's capabilities are unreadable");
        goto cleanup;
    }
    if (x86 > 0 &&
        xpath_count(hc, "/capabilities/host/cpu/feature[@name='vmx' or @name='svm']") < 1) {
        snprintf(note, note_size,
                 "the host CPU has no virtualization extensions (neither vmx nor svm)");
        goto cleanup;
    }
    if (kvm_dev < 0 && kvm_dev != -EACCES && kvm_dev != -EPERM) {
        snprintf(note, note_size, "/dev/kvm does not work: %s", strerror(-kvm_dev));
        goto cleanup;
    }
    usable = true;
cleanup:
    xmlFreeDoc(dc);
    xmlFreeDoc(hc);
    return usable;
}

bool br_virt_uri_is_local(const char *uri)
{
    const char *rest;

    /* qemu:///system, qemu+unix:///session?socket=...: no host part. */
    if (strncmp(uri, "qemu://", 7) == 0)
        rest = uri + 7;
    else if (strncmp(uri, "qemu+unix://", 12) == 0)
        rest = uri + 12;
    else
        return false;
    return rest[0] == '/';
}

int br_virt_kvm_device_check(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    int version;

    if (fd < 0)
        return -errno;
    version = ioctl(fd, KVM_GET_API_VERSION, 0);
    close(fd);
    if (version != KVM_API_VERSION)
        return -ENOTSUP;
    return 0;
}

/* What `domain_type: auto` takes on this connection: KVM when libvirt offers it and it
 * really works, else software emulation; the test driver gets its own type. */
static void choose_domain_type(BrVirtConn *c)
{
    const char *type = virConnectGetType(c->conn);
    char *domcaps, *caps = NULL;
    int kvm_dev = 1;
    bool usable;

    if (!type || strcmp(type, "QEMU") != 0) {
        if (!type)
            virResetLastError();
        snprintf(c->hypervisor, sizeof(c->hypervisor), "test");
        snprintf(c->domain_type, sizeof(c->domain_type), "test");
        return;
    }
    /* Ask the hypervisor, not our own machine, whether it offers KVM. */
    domcaps = virConnectGetDomainCapabilities(c->conn, NULL, NULL, NULL, "kvm", 0);
    if (!domcaps) {
        virResetLastError();
        snprintf(c->hypervisor, sizeof(c->hypervisor), "qemu");
        snprintf(c->domain_type, sizeof(c->domain_type), "qemu");
        return;
    }
    snprintf(c->hypervisor, sizeof(c->hypervisor), "kvm");
    caps = virConnectGetCapabilities(c->conn);
    if (!caps)
        virResetLastError();
    /* Opening /dev/kvm says something only about a hypervisor on this machine; a broker user
     * without access to it (EACCES) cannot tell, and libvirt's answer stands. */
    if (br_virt_uri_is_local(c->uri))
        kvm_dev = br_virt_kvm_device_check("/dev/kvm");
    usable = br_virt_kvm_usable(domcaps, caps, kvm_dev, c->domain_note, sizeof(c->domain_note));
    snprintf(c->domain_type, sizeof(c->domain_type), "%s", usable ? "kvm" : "qemu");
    free(domcaps);
    free(caps);
}

int br_virt_open(const char *uri, int keepalive_interval, unsigned keepalive_count,
                 BrVirtConn **ret, CmError *err)
{
    BrVirtConn *c = calloc(1, sizeof(*c));

    if (c)
        c->uri = strdup(uri);
    if (!c || !c->uri) {
        free(c);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    c->conn = virConnectOpenAuth(uri, virConnectAuthPtrDefault, 0);
    if (!c->conn) {
        int r = virt_error(err, "cannot connect");
        free(c->uri);
        free(c);
        return r == -EIO ? -EAGAIN : r;
    }
    /* The test driver has no keepalive; that is fine. */
    if (virConnectSetKeepAlive(c->conn, keepalive_interval, keepalive_count) < 0)
        virResetLastError();
    if (virConnectRegisterCloseCallback(c->conn, close_callback, c, NULL) < 0)
        virResetLastError();
    choose_domain_type(c);
    *ret = c;
    return 0;
}

BrVirtConn *br_virt_close(BrVirtConn *c)
{
    if (!c)
        return NULL;
    if (c->conn) {
        virConnectUnregisterCloseCallback(c->conn, close_callback);
        virConnectClose(c->conn);
    }
    free(c->uri);
    free(c);
    return NULL;
}

bool br_virt_alive(BrVirtConn *c)
{
    if (!c || atomic_load(&c->lost))
        return false;
    int alive = virConnectIsAlive(c->conn);
    if (alive <= 0)
        virResetLastError();
    return alive == 1;
}

const char *br_virt_domain_type(BrVirtConn *c)
{
    return c->domain_type;
}

const char *br_virt_hypervisor(BrVirtConn *c)
{
    return c->hypervisor;
}

const char *br_virt_domain_type_note(BrVirtConn *c)
{
    return c->domain_note;
}

int br_virt_node_info(BrVirtConn *c, BrVirtNodeInfo *ret, CmError *err)
{
    virNodeInfo info;
    if (virNodeGetInfo(c->conn, &info) < 0)
        return virt_error(err, "cannot read node information");
    ret->cpus = info.cpus;
    ret->memory_mib = info.memory / 1024; /* KiB */
    return 0;
}

/* Sets @ret_r to -ENOENT for a missing pool, or to virt_error()'s mapping (-EAGAIN for a
 * lost connection) for anything else. */
static virStoragePoolPtr pool_lookup_r(BrVirtConn *c, const char *pool, int *ret_r, CmError *err)
{
    virStoragePoolPtr p = virStoragePoolLookupByName(c->conn, pool);
    if (!p) {
        virErrorPtr e = virGetLastError();
        if (e && e->code == VIR_ERR_NO_STORAGE_POOL) {
            virResetLastError();
            cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "no_storage_pool", "pool",
                              "storage pool '%s' not found on %s", pool, c->uri);
            *ret_r = -ENOENT;
        } else {
            *ret_r = virt_error(err, "cannot look up the storage pool");
        }
    }
    return p;
}

int br_virt_pool_info(BrVirtConn *c, const char *pool, BrVirtPoolInfo *ret, CmError *err)
{
    int lr = 0;
    _cleanup_pool_ virStoragePoolPtr p = pool_lookup_r(c, pool, &lr, err);
    virStoragePoolInfo info;
    if (!p)
        return lr;
    if (virStoragePoolGetInfo(p, &info) < 0)
        return virt_error(err, "cannot read storage pool");
    ret->capacity_gib = info.capacity >> 30;
    ret->allocation_gib = info.allocation >> 30;
    ret->available_gib = info.available >> 30;
    return 0;
}

/* NULL with *ret_r 0: no such volume. NULL with *ret_r < 0: libvirt failed (a lost
 * connection is -EAGAIN), which must never be taken for "already gone". */
static virStorageVolPtr vol_lookup(virStoragePoolPtr p, const char *name, int *ret_r, CmError *err)
{
    virStorageVolPtr v = virStorageVolLookupByName(p, name);
    *ret_r = 0;
    if (!v && !last_error_is(VIR_ERR_NO_STORAGE_VOL))
        *ret_r = virt_error(err, "cannot look up the volume");
    return v;
}

int br_virt_volume_exists(BrVirtConn *c, const char *pool, const char *name, CmError *err)
{
    int lr = 0;
    _cleanup_pool_ virStoragePoolPtr p = pool_lookup_r(c, pool, &lr, err);
    _cleanup_vol_ virStorageVolPtr v = NULL;
    if (!p)
        return lr;
    v = vol_lookup(p, name, &lr, err);
    return v ? 1 : lr;
}

int br_virt_volume_create(BrVirtConn *c, const char *pool, const char *name, uint64_t capacity_gib,
                          const char *base, const char *base_format, CmError *err)
{
    int lr = 0;
    _cleanup_pool_ virStoragePoolPtr p = pool_lookup_r(c, pool, &lr, err);
    _cleanup_vol_ virStorageVolPtr v = NULL, b = NULL;
    _cleanup_free_ char *base_path = NULL;
    xmlDocPtr doc;
    xmlNodePtr root, n;
    xmlChar *xml = NULL;
    int size = 0;
    char cap[32];

    if (!p)
        return lr;
    v = vol_lookup(p, name, &lr, err);
    if (v)
        return 0; /* made by an earlier attempt */
    if (lr < 0)
        return lr;
    b = vol_lookup(p, base, &lr, err);
    if (lr < 0)
        return lr;
    if (!b)
        return cm_error_set_code(err, CM_ERROR_UNPROCESSABLE, "no_base_image", "image",
                                 "base volume '%s' not found in pool '%s' on %s", base, pool,
                                 c->uri);
    base_path = virStorageVolGetPath(b);
    if (!base_path)
        return virt_error(err, "cannot locate the base volume");

    doc = xmlNewDoc(BAD_CAST "1.0");
    root = xmlNewNode(NULL, BAD_CAST "volume");
    xmlDocSetRootElement(doc, root);
    xmlNewTextChild(root, NULL, BAD_CAST "name", BAD_CAST name);
    snprintf(cap, sizeof(cap), "%" PRIu64, capacity_gib << 30);
    n = xmlNewTextChild(root, NULL, BAD_CAST "capacity", BAD_CAST cap);
    xmlNewProp(n, BAD_CAST "unit", BAD_CAST "bytes");
    n = xmlNewChild(root, NULL, BAD_CAST "target", NULL);
    xmlNewProp(xmlNewChild(n, NULL, BAD_CAST "format", NULL), BAD_CAST "type", BAD_CAST "qcow2");
    n = xmlNewChild(root, NULL, BAD_CAST "backingStore", NULL);
    xmlNewTextChild(n, NULL, BAD_CAST "path", BAD_CAST base_path);
    xmlNewProp(xmlNewChild(n, NULL, BAD_CAST "format", NULL), BAD_CAST "type",
               BAD_CAST(base_format ? base_format : "qcow2"));
    xmlDocDumpMemory(doc, &xml, &size);
    xmlFreeDoc(doc);
    if (!xml)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");

    v = virStorageVolCreateXML(p, (const char *)xml, 0);
    xmlFree(xml);
    if (!v) {
        /* Read libvirt's reason before the lookup below resets it. */
        CmError why = {0};
        int r = virt_error(&why, "cannot create volume");
        int lr2 = 0;
        virStorageVolPtr again = vol_lookup(p, name, &lr2, NULL);
        if (again) {
            /* Another attempt made it meanwhile. */
            virStorageVolFree(again);
            return 0;
        }
        if (err)
            *err = why;
        return r;
    }
    return 0;
}

int br_virt_volume_resize(BrVirtConn *c, const char *pool, const char *name, uint64_t capacity_gib,
                          CmError *err)
{
    int lr = 0;
    _cleanup_pool_ virStoragePoolPtr p = pool_lookup_r(c, pool, &lr, err);
    _cleanup_vol_ virStorageVolPtr v = NULL;
    virStorageVolInfo info;

    if (!p)
        return lr;
    v = vol_lookup(p, name, &lr, err);
    if (lr < 0)
        return lr;
    if (!v)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "volume %s is missing", name);
    if (virStorageVolGetInfo(v, &info) < 0)
        return virt_error(err, "cannot read volume");
    if (info.capacity >= (capacity_gib << 30))
        return 0; /* disks only grow */
    if (virStorageVolResize(v, capacity_gib << 30, 0) < 0)
        return virt_error(err, "cannot grow volume");
    return 0;
}

int br_virt_volume_wipe(BrVirtConn *c, const char *pool, const char *name, CmError *err)
{
    int lr = 0;
    _cleanup_pool_ virStoragePoolPtr p = pool_lookup_r(c, pool, &lr, err);
    _cleanup_vol_ virStorageVolPtr v = NULL;
    if (!p)
        return lr;
    v = vol_lookup(p, name, &lr, err);
    if (!v)
        return lr;
    if (virStorageVolWipe(v, 0) < 0)
        return virt_error(err, "cannot wipe volume");
    return 0;
}

int br_virt_volume_delete(BrVirtConn *c, const char *pool, const char *name, CmError *err)
{
    int lr = 0;
    _cleanup_pool_ virStoragePoolPtr p = pool_lookup_r(c, pool, &lr, err);
    _cleanup_vol_ virStorageVolPtr v = NULL;
    if (!p)
        return lr;
    v = vol_lookup(p, name, &lr, err);
    if (!v)
        return lr;
    if (virStorageVolDelete(v, 0) < 0) {
        if (last_error_is(VIR_ERR_NO_STORAGE_VOL))
            return 0;
        return virt_error(err, "cannot delete volume");
    }
    return 0;
}

/* NULL with *ret_r 0: no such domain. NULL with *ret_r < 0: libvirt failed (a lost
 * connection is -EAGAIN), which must never be taken for "already gone". */
static virDomainPtr domain_lookup(BrVirtConn *c, const char *uuid, int *ret_r, CmError *err)
{
    virDomainPtr d = virDomainLookupByUUIDString(c->conn, uuid);
    *ret_r = 0;
    if (!d && !last_error_is(VIR_ERR_NO_DOMAIN))
        *ret_r = virt_error(err, "cannot look up the domain");
    return d;
}

static BrVirtState state_from(int state, int reason)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
        return BR_VIRT_STATE_RUNNING;
    case VIR_DOMAIN_PAUSED:
        /* Paused for a moment while it starts: a guest on its way to running, not one
         * someone paused. */
        if (reason == VIR_DOMAIN_PAUSED_STARTING_UP)
            return BR_VIRT_STATE_RUNNING;
        return BR_VIRT_STATE_PAUSED;
    case VIR_DOMAIN_SHUTOFF:
        return BR_VIRT_STATE_SHUTOFF;
    default:
        return BR_VIRT_STATE_OTHER;
    }
}

/* The state where a failed answer only matters as "not the state hoped for". */
static BrVirtState state_of(virDomainPtr d)
{
    int state = 0, reason = 0;
    if (virDomainGetState(d, &state, &reason, 0) < 0) {
        virResetLastError();
        return BR_VIRT_STATE_OTHER;
    }
    return state_from(state, reason);
}

/* The state, or absent when the domain went away; < 0 when libvirt could not say. */
static int state_r(virDomainPtr d, BrVirtState *ret, CmError *err)
{
    int state = 0, reason = 0;
    if (virDomainGetState(d, &state, &reason, 0) < 0) {
        if (last_error_is(VIR_ERR_NO_DOMAIN)) {
            *ret = BR_VIRT_STATE_ABSENT;
            return 0;
        }
        return virt_error(err, "cannot read the domain's state");
    }
    *ret = state_from(state, reason);
    return 0;
}

int br_virt_domain_define(BrVirtConn *c, const char *uuid, const char *xml, CmError *err)
{
    int lr = 0;
    _cleanup_domain_ virDomainPtr d = domain_lookup(c, uuid, &lr, err);
    if (d)
        return 0;
    if (lr < 0)
        return lr;
    d = virDomainDefineXML(c->conn, xml);
    if (!d)
        return virt_error(err, "cannot define domain");
    return 0;
}

int br_virt_domain_redefine(BrVirtConn *c, const char *xml, CmError *err)
{
    _cleanup_domain_ virDomainPtr d = virDomainDefineXML(c->conn, xml);
    if (!d)
        return virt_error(err, "cannot redefine domain");
    return 0;
}

int br_virt_domain_start(BrVirtConn *c, const char *uuid, CmError *err)
{
    int lr = 0;
    _cleanup_domain_ virDomainPtr d = domain_lookup(c, uuid, &lr, err);
    if (lr < 0)
        return lr;
    if (!d)
        return cm_error_set_code(err, CM_ERROR_INTERNAL, "domain_missing", "",
                                 "domain %s is not defined", uuid),
               -ENOENT;
    if (state_of(d) == BR_VIRT_STATE_RUNNING)
        return 0;
    if (state_of(d) == BR_VIRT_STATE_PAUSED) {
        if (virDomainResume(d) < 0)
            return virt_error(err, "cannot resume domain");
        return 0;
    }
    if (virDomainCreate(d) < 0) {
        /* Read the reason first: asking for the state below resets it. */
        CmError why = {0};
        int r = virt_error(&why, "cannot start domain");
        if (state_of(d) == BR_VIRT_STATE_RUNNING)
            return 0; /* started meanwhile */
        if (err)
            *err = why;
        return r;
    }
    return 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int br_virt_domain_shutdown(BrVirtConn *c, const char *uuid, unsigned timeout_ms, bool *ret_forced,
                            CmError *err)
{
    int lr = 0;
    _cleanup_domain_ virDomainPtr d = domain_lookup(c, uuid, &lr, err);
    unsigned waited = 0;
    BrVirtState st;

    if (ret_forced)
        *ret_forced = false;
    if (!d)
        return lr;
    lr = state_r(d, &st, err);
    if (lr < 0)
        return lr;
    if (st == BR_VIRT_STATE_SHUTOFF || st == BR_VIRT_STATE_ABSENT)
        return 0;
    if (virDomainShutdown(d) < 0)
        virResetLastError(); /* a guest without ACPI: we force it below */
    while (waited < timeout_ms) {
        if (state_of(d) == BR_VIRT_STATE_SHUTOFF)
            return 0;
        sleep_ms(200);
        waited += 200;
    }
    if (state_of(d) == BR_VIRT_STATE_SHUTOFF)
        return 0;
    if (ret_forced)
        *ret_forced = true;
    if (virDomainDestroy(d) < 0) {
        CmError why = {0};
        int r = virt_error(&why, "cannot force the domain off");
        if (state_of(d) == BR_VIRT_STATE_SHUTOFF)
            return 0;
        if (err)
            *err = why;
        return r;
    }
    return 0;
}

int br_virt_domain_undefine(BrVirtConn *c, const char *uuid, CmError *err)
{
    int lr = 0;
    _cleanup_domain_ virDomainPtr d = domain_lookup(c, uuid, &lr, err);
    /* Everything that could outlive the domain goes with it. A hypervisor that lacks a
     * feature (checkpoints, NVRAM; or the test driver) refuses its flag; what it cannot
     * have, there is nothing of to remove, so the flag is dropped and we try again. */
    const unsigned tries[] = {
        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
            VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM,
        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
            VIR_DOMAIN_UNDEFINE_NVRAM,
        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    };
    if (!d)
        return lr;
    if (state_of(d) != BR_VIRT_STATE_SHUTOFF && virDomainDestroy(d) < 0)
        virResetLastError();
    for (size_t i = 0; i < ELEMENTSOF(tries); i++) {
        if (virDomainUndefineFlags(d, tries[i]) == 0)
            return 0;
        if (last_error_is(VIR_ERR_NO_DOMAIN))
            return 0;
        virErrorPtr e = virGetLastError();
        if (!e || (e->code != VIR_ERR_INVALID_ARG && e->code != VIR_ERR_NO_SUPPORT) ||
            i + 1 == ELEMENTSOF(tries))
            return virt_error(err, "cannot undefine domain");
        virResetLastError();
    }
    return 0;
}

int br_virt_domain_state(BrVirtConn *c, const char *uuid, BrVirtState *ret, CmError *err)
{
    int lr = 0;
    _cleanup_domain_ virDomainPtr d = domain_lookup(c, uuid, &lr, err);
    *ret = BR_VIRT_STATE_ABSENT;
    if (!d)
        return lr;
    return state_r(d, ret, err);
}

/* The persistent config first, then the running guest: two calls, since not every driver
 * takes both flags at once. */
typedef int (*SetFn)(virDomainPtr d, unsigned long long value, unsigned flags);

static int set_vcpus_fn(virDomainPtr d, unsigned long long v, unsigned flags)
{
    return virDomainSetVcpusFlags(d, (unsigned)v, flags);
}

static int set_memory_fn(virDomainPtr d, unsigned long long v, unsigned flags)
{
    return virDomainSetMemoryFlags(d, (unsigned long)v, flags);
}

static int set_both(BrVirtConn *c, const char *uuid, SetFn fn, unsigned long long value,
                    const char *what, CmError *err)
{
    int lr = 0;
    _cleanup_domain_ virDomainPtr d = domain_lookup(c, uuid, &lr, err);
    if (lr < 0)
        return lr;
    if (!d)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "domain %s is not defined", uuid), -ENOENT;
    if (fn(d, value, VIR_DOMAIN_AFFECT_CONFIG) < 0)
        return virt_error(err, what);
    if (state_of(d) == BR_VIRT_STATE_RUNNING && fn(d, value, VIR_DOMAIN_AFFECT_LIVE) < 0)
        return virt_error(err, what);
    return 0;
}

int br_virt_domain_set_vcpus(BrVirtConn *c, const char *uuid, unsigned vcpus, CmError *err)
{
    return set_both(c, uuid, set_vcpus_fn, vcpus, "cannot set vCPUs", err);
}

int br_virt_domain_set_memory(BrVirtConn *c, const char *uuid, uint64_t memory_mib, CmError *err)
{
    return set_both(c, uuid, set_memory_fn, memory_mib * 1024, "cannot set memory", err);
}

int br_virt_domain_grow_disk(BrVirtConn *c, const char *uuid, uint64_t capacity_gib, CmError *err)
{
    int lr = 0;
    _cleanup_domain_ virDomainPtr d = domain_lookup(c, uuid, &lr, err);
    BrVirtState st = BR_VIRT_STATE_ABSENT;
    if (!d)
        return lr;
    lr = state_r(d, &st, err);
    if (lr < 0)
        return lr;
    if (st != BR_VIRT_STATE_RUNNING)
        return 0; /* a stopped domain sees the new size when it starts */
    if (virDomainBlockResize(d, "vda", capacity_gib << 30, VIR_DOMAIN_BLOCK_RESIZE_BYTES) < 0)
        return virt_error(err, "cannot grow the running domain's disk");
    return 0;
}

int br_virt_list_domains(BrVirtConn *c, BrVirtDomain **ret, size_t *ret_n, CmError *err)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c->conn, &doms, 0);
    BrVirtDomain *out;

    if (n < 0)
        return virt_error(err, "cannot list domains");
    out = calloc((size_t)n + 1, sizeof(*out));
    if (!out) {
        for (int i = 0; i < n; i++)
            virDomainFree(doms[i]);
        free(doms);
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }
    size_t kept = 0;
    int r = 0;
    for (int i = 0; i < n; i++) {
        BrVirtDomain *o = &out[kept];
        const char *name = virDomainGetName(doms[i]);
        char *md;
        if (r < 0 || (r = state_r(doms[i], &o->state, err)) < 0 ||
            o->state == BR_VIRT_STATE_ABSENT) {
            virDomainFree(doms[i]); /* gone since the list was made, or libvirt failed */
            continue;
        }
        if (virDomainGetUUIDString(doms[i], o->uuid) < 0)
            virResetLastError();
        snprintf(o->name, sizeof(o->name), "%s", name ? name : "");
        md = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT, BR_XMLNS_URI, 0);
        if (!md)
            virResetLastError();
        o->ours = md && br_domain_metadata_parse(md, &o->department_id, &o->system_id,
                                                 &o->allocation_id, &o->instance_id) == 0;
        free(md);
        virDomainFree(doms[i]);
        kept++;
    }
    free(doms);
    if (r < 0) {
        free(out);
        return r;
    }
    *ret = out;
    *ret_n = kept;
    return 0;
}
