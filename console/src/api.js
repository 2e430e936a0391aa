// SPDX-License-Identifier: Apache-2.0
// The REST API, called with the session cookie: the same endpoints and role checks as the CLI.
// Every URL is relative (v1/...), so the console works under any reverse-proxy prefix.
import { signal } from './signal.js';

// The signed-in session ({account, csrf_token, expires_at, unread_notifications, ...}), or
// null. `expired` tells the sign-in page why it is shown.
export const session = signal(undefined);
export const expired = signal(false);
export const unread = signal(0);

export class ApiError extends Error {
    constructor(status, body, headers) {
        const e = (body && body.error) || {};
        super(e.message || `HTTP ${status}`);
        this.status = status;
        this.code = e.code || `http_${status}`;
        this.field = e.field || '';
        this.request_id = e.request_id || '';
        const ra = headers && headers.get && headers.get('Retry-After');
        this.retry_after = ra ? parseInt(ra, 10) : null;
    }
}

function csrf_headers(method) {
    const s = session.get();
    if (method === 'GET' || method === 'HEAD' || !s || !s.csrf_token) return {};
    return { 'X-CSRF-Token': s.csrf_token };
}

function lost_session(path) {
    // A 401 on anything but the sign-in calls means the session ended (expired, signed out
    // elsewhere, password changed, account disabled): back to the sign-in page.
    if (path.startsWith('session') || path.startsWith('password/')) return;
    if (session.get()) expired.set(true);
    session.set(null);
}

// api(method, path, body): the decoded JSON answer (null for 204). Throws ApiError.
export async function api(method, path, body) {
    const headers = { Accept: 'application/json', ...csrf_headers(method) };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    let r;
    try {
        r = await fetch(`v1/${path}`, init);
    } catch (e) {
        throw new ApiError(0, { error: { code: 'network', message: String(e.message || e) } });
    }
    if (r.status === 204) return null;
    let doc = null;
    const type = r.headers.get('Content-Type') || '';
    if (type.includes('json')) {
        try {
            doc = await r.json();
        } catch (e) {
            doc = null;
        }
    } else {
        doc = await r.text();
    }
    if (!r.ok) {
        if (r.status === 401) lost_session(path);
        throw new ApiError(r.status, doc, r.headers);
    }
    return doc;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const patch = (path, body) => api('PATCH', path, body);

// q({a: 1, b: ''}) → "a=1": the query string of the members that are set.
export function q(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
        if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
    }
    const s = u.toString();
    return s ? `?${s}` : '';
}

// Every item of a list endpoint, page by page, up to @max items.
export async function get_all(path, params, max = 10000) {
    const items = [];
    let after = 0;
    for (;;) {
        const page = await get(path + q({ ...params, limit: 1000, after: after || undefined }));
        items.push(...page.items);
        if (!page.next || items.length >= max) return items;
        after = page.next;
    }
}

// upload(path, file, on_progress(percent)): PUT of the file's bytes with its own type, with
// upload progress (XMLHttpRequest: fetch cannot report it). Resolves to the JSON answer.
export function upload(path, file, on_progress) {
    return new Promise((resolve, reject) => {
        const x = new XMLHttpRequest();
        x.open('PUT', `v1/${path}`);
        x.withCredentials = true;
        x.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
        x.setRequestHeader('Accept', 'application/json');
        for (const [k, v] of Object.entries(csrf_headers('PUT'))) x.setRequestHeader(k, v);
        x.upload.onprogress = (e) => {
            if (e.lengthComputable && on_progress) on_progress(Math.round((100 * e.loaded) / e.total));
        };
        x.onload = () => {
            let doc = null;
            try {
                doc = JSON.parse(x.responseText);
            } catch (e) {
                doc = null;
            }
            if (x.status >= 200 && x.status < 300) {
                if (on_progress) on_progress(100);
                resolve(doc);
            } else {
                if (x.status === 401) lost_session(path);
                reject(new ApiError(x.status, doc, { get: (h) => x.getResponseHeader(h) }));
            }
        };
        x.onerror = () => reject(new ApiError(0, { error: { code: 'network', message: 'network error' } }));
        x.send(file);
    });
}

// The session: read after a reload (GET), made by signing in (POST), ended (DELETE).
export async function load_session() {
    try {
        const s = await get('session');
        unread.set(s.unread_notifications || 0);
        session.set(s);
    } catch (e) {
        session.set(null);
        if (e.status !== 401) throw e;
    }
}

export async function sign_in(name, password) {
    const s = await api('POST', 'session', { name, password });
    expired.set(false);
    unread.set(s.unread_notifications || 0);
    session.set(s);
    return s;
}

export async function sign_out() {
    try {
        await api('DELETE', 'session');
    } finally {
        expired.set(false);
        session.set(null);
    }
}
