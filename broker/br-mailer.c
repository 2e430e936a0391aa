/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "br-daemon.h"
#include "br-mailer.h"
#include "br-outbox.h"
#include "cm-log.h"
#include "cm-util.h"
#include "cm-worker.h"

#define POLL_MS 2000
#define BACKOFF_MAX_MS 3600000

struct BrMailer {
    BrDaemon *d;
    CmWorker *worker;
    char *password;
    char host[256];
};

int64_t br_mailer_backoff_ms(int64_t first_ms, int64_t attempts)
{
    int64_t ms = first_ms < BACKOFF_MAX_MS ? first_ms : BACKOFF_MAX_MS;
    for (int64_t i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static char *base64(const char *data, size_t len, size_t line)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = (len + 2) / 3 * 4, n = 0, col = 0;
    char *out = malloc(out_len + (line ? out_len / line * 2 + 3 : 0) + 1);

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)(unsigned char)data[i + 1] << 8;
        if (i + 2 < len)
            v |= (unsigned char)data[i + 2];
        out[n++] = tab[(v >> 18) & 63];
        out[n++] = tab[(v >> 12) & 63];
        out[n++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[n++] = i + 2 < len ? tab[v & 63] : '=';
        col += 4;
        if (line && col >= line) {
            out[n++] = '\r';
            out[n++] = '\n';
            col = 0;
        }
    }
    out[n] = 0;
    return out;
}

char *br_mailer_message(const char *from, const char *to, const char *subject, const char *body,
                        const char *message_id, int64_t date_ms)
{
    _cleanup_free_ char *subj = base64(subject, strlen(subject), 0);
    _cleanup_free_ char *text = base64(body, strlen(body), 76);
    char date[64];
    time_t t = (time_t)(date_ms / 1000);
    struct tm tm;

    if (!subj || !text)
        return NULL;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return cm_strdup_printf("Date: %s\r\n"
                            "From: <%s>\r\n"
                            "To: <%s>\r\n"
                            "Message-ID: <%s>\r\n"
                            "Subject: =?UTF-8?B?%s?=\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=UTF-8\r\n"
                            "Content-Transfer-Encoding: base64\r\n"
                            "Auto-Submitted: auto-generated\r\n"
                            "\r\n"
                            "%s\r\n",
                            date, from, to, message_id, subj, text);
}

typedef struct {
    const char *data;
    size_t len, off;
} Payload;

static size_t payload_read(char *buf, size_t size, size_t n, void *ctx)
{
    Payload *p = ctx;
    size_t want = size * n, left = p->len - p->off;
    if (want > left)
        want = left;
    memcpy(buf, p->data + p->off, want);
    p->off += want;
    return want;
}

/* Sends one mail. Returns: 0, or -EIO with @error (a sentence) filled. */
static int send_mail(BrMailer *m, const BrMail *mail, char *error, size_t error_size)
{
    const BrConfig *cfg = &m->d->config;
    _cleanup_free_ char *msg = NULL, *from = NULL, *to = NULL, *mid = NULL;
    struct curl_slist *rcpt = NULL;
    char curl_err[CURL_ERROR_SIZE] = "";
    Payload p;
    CURL *curl;
    CURLcode rc;

    mid = cm_strdup_printf("cloudbroker.%lld.%lld@%s", (long long)mail->id,
                           (long long)mail->attempts, m->host);
    from = cm_strdup_printf("<%s>", cfg->smtp.from);
    to = cm_strdup_printf("<%s>", mail->recipient);
    if (mid)
        msg = br_mailer_message(cfg->smtp.from, mail->recipient, mail->subject, mail->body, mid,
                                cm_now_ms());
    curl = curl_easy_init();
    if (!msg || !from || !to || !curl) {
        if (curl)
            curl_easy_cleanup(curl);
        snprintf(error, error_size, "out of memory");
        return -EIO;
    }
    p = (Payload){.data = msg, .len = strlen(msg)};
    rcpt = curl_slist_append(NULL, to);
    curl_easy_setopt(curl, CURLOPT_URL, cfg->smtp.url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, payload_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &p);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)cfg->smtp.timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    if (cfg->smtp.user) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, cfg->smtp.user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, m->password ? m->password : "");
    }
    rc = curl_easy_perform(curl);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    if (rc == CURLE_OK)
        return 0;
    snprintf(error, error_size, "%s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
    return -EIO;
}

typedef struct {
    const BrMail *mail;
    const char *error;
    int64_t retry_at_ms;
} MailResult;

static int result_tx(BrTx *tx, void *ctx)
{
    MailResult *w = ctx;
    if (!w->error)
        return br_outbox_sent(tx, w->mail->id);
    return br_outbox_failed(tx, w->mail->id, w->error, w->retry_at_ms);
}

static int64_t mailer_pass(void *ctx)
{
    BrMailer *m = ctx;
    CmError err = {0};
    CmDb *db = br_store_db(m->d->store, &err);
    int64_t next = -1, now = cm_now_ms();
    BrMail mail = {0};
    char error[256];
    MailResult res;
    int r;

    if (!db)
        return POLL_MS;
    r = br_outbox_next_due(db, now, &mail, &next, &err);
    if (r < 0) {
        cm_log_error("mailer: cannot read the outbox: %s", err.message);
        return POLL_MS;
    }
    if (r == 0)
        /* New mail comes with other threads' commits: look again soon. */
        return next < 0 || next - now > POLL_MS ? POLL_MS : (next - now > 0 ? next - now : 0);
    res = (MailResult){.mail = &mail};
    if (send_mail(m, &mail, error, sizeof(error)) < 0) {
        res.error = error;
        res.retry_at_ms =
            cm_now_ms() + br_mailer_backoff_ms((int64_t)m->d->config.smtp.retry_seconds * 1000,
                                               mail.attempts + 1);
        cm_log_warning("mailer: mail %lld to %s not sent (attempt %lld): %s; next try in %lld s",
                       (long long)mail.id, mail.recipient, (long long)mail.attempts + 1, error,
                       (long long)((res.retry_at_ms - cm_now_ms()) / 1000));
    } else {
        cm_log_info("mailer: mail %lld sent to %s", (long long)mail.id, mail.recipient);
    }
    r = br_tx_run(m->d->store, "mail.result", NULL, result_tx, &res, &err);
    if (r < 0)
        cm_log_error("mailer: cannot record mail %lld: %s", (long long)mail.id, err.message);
    br_mail_clear(&mail);
    return r < 0 ? POLL_MS : 0;
}

int br_mailer_start(BrDaemon *d, BrMailer **ret, CmError *err)
{
    BrMailer *m = calloc(1, sizeof(*m));
    const char *at;
    int r;

    if (!m)
        return cm_error_set(err, CM_ERROR_INTERNAL, "", "out of memory");
    m->d = d;
    at = strrchr(d->config.smtp.from, '@');
    snprintf(m->host, sizeof(m->host), "%s", at ? at + 1 : "cloudbroker");
    if (d->config.smtp.password_file) {
        size_t len = 0;
        r = cm_read_file(d->config.smtp.password_file, 4096, &m->password, &len);
        if (r < 0) {
            free(m);
            return cm_error_set(err, CM_ERROR_INVALID, "smtp/password_file", "cannot read %s: %s",
                                d->config.smtp.password_file, strerror(-r));
        }
        while (len && (m->password[len - 1] == '\n' || m->password[len - 1] == '\r'))
            m->password[--len] = 0;
    }
    CmWorkerConfig wc = {.name = "mailer", .threads = 1, .run = mailer_pass, .ctx = m};
    r = cm_worker_start(&wc, &m->worker, err);
    if (r < 0) {
        free(m->password);
        free(m);
        return r;
    }
    cm_log_notice("mailer: notifications are mailed through %s as %s", d->config.smtp.url,
                  d->config.smtp.from);
    *ret = m;
    return 0;
}

BrMailer *br_mailer_stop(BrMailer *m)
{
    if (!m)
        return NULL;
    m->worker = cm_worker_stop(m->worker);
    if (m->password)
        explicit_bzero(m->password, strlen(m->password));
    free(m->password);
    free(m);
    return NULL;
}
