/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "br-domain-xml.h"
#include "cm-cleanup.h"
#include "cm-util.h"

/* Department text is for people reading `virsh dumpxml`; it need not be long. */
#define TEXT_MAX_BYTES 1024

static void xml_doc_freep(xmlDocPtr *d)
{
    if (*d)
        xmlFreeDoc(*d);
}

/* Decodes one UTF-8 character at @s (at most @n bytes); returns its length or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t v;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0)
        len = 2, v = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3, v = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        len = 4, v = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
        v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static bool xml_char_allowed(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

char *br_xml_text_sanitize(const char *s, size_t max_bytes)
{
    static const char replacement[] = "\xef\xbf\xbd";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), out_len = 0;
    char *out = malloc(max_bytes + 1);

    if (!out)
        return NULL;
    while (*p) {
        uint32_t cp = 0;
        size_t len = utf8_decode(p, n, &cp);
        const char *piece = (const char *)p;
        size_t piece_len = len;

        if (len == 0 || !xml_char_allowed(cp)) {
            piece = replacement;
            piece_len = 3;
            len = len ? len : 1;
        }
        if (out_len + piece_len > max_bytes)
            break;
        memcpy(out + out_len, piece, piece_len);
        out_len += piece_len;
        p += len;
        n -= len;
    }
    out[out_len] = 0;
    return out;
}

static xmlNodePtr add(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
    /* xmlNewTextChild escapes &, < and > in the text; xmlNewChild would not. */
    return xmlNewTextChild(parent, ns, BAD_CAST name, BAD_CAST text);
}

static void attr(xmlNodePtr node, const char *name, const char *value)
{
    xmlNewProp(node, BAD_CAST name, BAD_CAST value);
}

static void attr_i64(xmlNodePtr node, const char *name, int64_t value)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, value);
    attr(node, name, buf);
}

static xmlNodePtr add_u64(xmlNodePtr parent, const char *name, uint64_t value)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, value);
    return add(parent, NULL, name, buf);
}

int br_domain_xml_build(const BrDomainSpec *spec, char **ret, CmError *err)
{
    _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
    _cleanup_free_ char *dept = NULL, *sys = NULL, *desc = NULL;
    xmlNodePtr root, node, os, devices, md, inst;
    xmlNsPtr ns;
    xmlChar *mem = NULL;
    int size = 0;
    char buf[64];

    if (!spec->name || !spec->uuid || !spec->pool || !spec->volume || spec->vcpus == 0 ||
        spec->max_vcpus < spec->vcpus || spec->max_memory_mib < spec->memory_mib)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "incomplete domain specification");

    dept = br_xml_text_sanitize(spec->department_name, TEXT_MAX_BYTES);
    sys = br_xml_text_sanitize(spec->system_name, TEXT_MAX_BYTES);
    if (!dept || !sys)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    if (asprintf(&desc,
                 "cloudbroker %s instance %u of allocation %" PRId64 "; department: %s; system: %s",
                 spec->purpose, spec->index, spec->allocation_id, dept, sys) < 0) {
        desc = NULL;
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    }

    doc = xmlNewDoc(BAD_CAST "1.0");
    root = xmlNewNode(NULL, BAD_CAST "domain");
    xmlDocSetRootElement(doc, root);
    attr(root, "type", spec->domain_type ? spec->domain_type : "kvm");
    add(root, NULL, "name", spec->name);
    add(root, NULL, "uuid", spec->uuid);
    add(root, NULL, "title", spec->name);
    add(root, NULL, "description", desc);

    md = xmlNewChild(root, NULL, BAD_CAST "metadata", NULL);
    inst = xmlNewChild(md, NULL, BAD_CAST "instance", NULL);
    ns = xmlNewNs(inst, BAD_CAST BR_XMLNS_URI, BAD_CAST BR_XMLNS_PREFIX);
    xmlSetNs(inst, ns);
    node = add(inst, ns, "department", dept);
    attr_i64(node, "id", spec->department_id);
    node = add(inst, ns, "system", sys);
    attr_i64(node, "id", spec->system_id);
    node = add(inst, ns, "allocation", NULL);
    attr_i64(node, "id", spec->allocation_id);
    attr(node, "purpose", spec->purpose);
    node = add(inst, ns, "instance", NULL);
    attr_i64(node, "id", spec->instance_id);
    attr_i64(node, "index", spec->index);
    node = add(inst, ns, "request", NULL);
    attr_i64(node, "id", spec->request_id);

    /* Maximums at define time, so that growing up to them is a live change. */
    node = add_u64(root, "memory", spec->max_memory_mib * 1024);
    attr(node, "unit", "KiB");
    node = add_u64(root, "currentMemory", spec->memory_mib * 1024);
    attr(node, "unit", "KiB");
    node = add_u64(root, "vcpu", spec->max_vcpus);
    attr(node, "placement", "static");
    snprintf(buf, sizeof(buf), "%u", spec->vcpus);
    attr(node, "current", buf);

    os = xmlNewChild(root, NULL, BAD_CAST "os", NULL);
    node = add(os, NULL, "type", "hvm");
    attr(node, "arch", spec->arch ? spec->arch : "x86_64");
    if (spec->machine)
        attr(node, "machine", spec->machine);
    attr(xmlNewChild(os, NULL, BAD_CAST "boot", NULL), "dev", "hd");
    node = xmlNewChild(root, NULL, BAD_CAST "features", NULL);
    xmlNewChild(node, NULL, BAD_CAST "acpi", NULL);
    xmlNewChild(node, NULL, BAD_CAST "apic", NULL);
    if (spec->domain_type && strcmp(spec->domain_type, "kvm") == 0)
        attr(xmlNewChild(root, NULL, BAD_CAST "cpu", NULL), "mode", "host-model");
    attr(xmlNewChild(root, NULL, BAD_CAST "clock", NULL), "offset", "utc");
    add(root, NULL, "on_poweroff", "destroy");
    add(root, NULL, "on_reboot", "restart");
    add(root, NULL, "on_crash", "destroy");

    devices = xmlNewChild(root, NULL, BAD_CAST "devices", NULL);
    node = xmlNewChild(devices, NULL, BAD_CAST "disk", NULL);
    attr(node, "type", "volume");
    attr(node, "device", "disk");
    xmlNodePtr drv = xmlNewChild(node, NULL, BAD_CAST "driver", NULL);
    attr(drv, "name", "qemu");
    attr(drv, "type", spec->disk_format ? spec->disk_format : "qcow2");
    xmlNodePtr src = xmlNewChild(node, NULL, BAD_CAST "source", NULL);
    attr(src, "pool", spec->pool);
    attr(src, "volume", spec->volume);
    xmlNodePtr tgt = xmlNewChild(node, NULL, BAD_CAST "target", NULL);
    attr(tgt, "dev", "vda");
    attr(tgt, "bus", "virtio");
    if (spec->network) {
        node = xmlNewChild(devices, NULL, BAD_CAST "interface", NULL);
        attr(node, "type", "network");
        attr(xmlNewChild(node, NULL, BAD_CAST "source", NULL), "network", spec->network);
        attr(xmlNewChild(node, NULL, BAD_CAST "model", NULL), "type", "virtio");
    }
    /* Balloon statistics give the agent guest-used memory where the guest reports it. */
    node = xmlNewChild(devices, NULL, BAD_CAST "memballoon", NULL);
    attr(node, "model", "virtio");
    attr(xmlNewChild(node, NULL, BAD_CAST "stats", NULL), "period", "10");
    attr(xmlNewChild(devices, NULL, BAD_CAST "serial", NULL), "type", "pty");
    attr(xmlNewChild(devices, NULL, BAD_CAST "console", NULL), "type", "pty");

    xmlDocDumpFormatMemoryEnc(doc, &mem, &size, "UTF-8", 1);
    if (!mem || size <= 0)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "cannot serialise the domain XML");
    *ret = strndup((const char *)mem, (size_t)size);
    xmlFree(mem);
    if (!*ret)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    return 0;
}

static int64_t id_attr(xmlNodePtr inst, const char *child)
{
    for (xmlNodePtr n = inst->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || xmlStrcmp(n->name, BAD_CAST child) != 0)
            continue;
        xmlChar *v = xmlGetProp(n, BAD_CAST "id");
        int64_t id = -1;
        /* All of the attribute must be a number: "" or "3x" is not an id. */
        if (!v || cm_parse_int64((const char *)v, 0, INT64_MAX, &id) < 0)
            id = -1;
        xmlFree(v);
        return id;
    }
    return -1;
}

int br_domain_metadata_parse(const char *xml, int64_t *ret_department, int64_t *ret_system,
                             int64_t *ret_allocation, int64_t *ret_instance)
{
    _cleanup_(xml_doc_freep) xmlDocPtr doc = NULL;
    xmlNodePtr root;
    int64_t d, s, a, i;

    if (!xml)
        return -EINVAL;
    doc = xmlReadMemory(xml, (int)strnlen(xml, 1 << 20), "metadata.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return -EINVAL;
    root = xmlDocGetRootElement(doc);
    /* virDomainGetMetadata() returns the element without its namespace (it was asked for
     * by URI); a whole domain document's element carries it. */
    if (!root || (root->ns && xmlStrcmp(root->ns->href, BAD_CAST BR_XMLNS_URI) != 0) ||
        xmlStrcmp(root->name, BAD_CAST "instance") != 0)
        return -EINVAL;
    d = id_attr(root, "department");
    s = id_attr(root, "system");
    a = id_attr(root, "allocation");
    i = id_attr(root, "instance");
    if (d < 0 || s < 0 || a < 0 || i < 0)
        return -EINVAL;
    *ret_department = d;
    *ret_system = s;
    *ret_allocation = a;
    *ret_instance = i;
    return 0;
}
