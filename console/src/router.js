// SPDX-License-Identifier: Apache-2.0
// Hash routing: #/path?query. Only relative URLs and the fragment, so the console works under
// any path prefix a reverse proxy gives it.
import { signal } from './signal.js';

function parse() {
    const h = window.location.hash.replace(/^#/, '') || '/';
    const i = h.indexOf('?');
    const path = (i >= 0 ? h.slice(0, i) : h) || '/';
    const query = Object.fromEntries(new URLSearchParams(i >= 0 ? h.slice(i + 1) : ''));
    return { path, query };
}

export const route = signal(parse());

window.addEventListener('hashchange', () => route.set(parse()));

export function navigate(to, replace) {
    if (replace) {
        window.history.replaceState(null, '', `#${to}`);
        route.set(parse());
    } else {
        window.location.hash = to;
    }
}

// The hash of @path with @query (members that are set).
export function href(path, query) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) {
        if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
    }
    const s = u.toString();
    return s ? `${path}?${s}` : path;
}

// match(routes, path, role): {route, params} of the first route whose pattern fits, with
// `forbidden` when the role is not among the route's; null when none fits.
export function match(routes, path, role) {
    for (const r of routes) {
        const names = [];
        const re = new RegExp(`^${r.path.replace(/:(\w+)/g, (m, n) => {
            names.push(n);
            return '([1-9][0-9]{0,15})';
        })}/?$`);
        const m = re.exec(path);
        if (!m) continue;
        const params = {};
        names.forEach((n, i) => {
            params[n] = Number(m[i + 1]);
        });
        if (r.roles && !r.roles.includes(role)) return { route: r, params, forbidden: true };
        return { route: r, params };
    }
    return null;
}
