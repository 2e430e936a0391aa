// SPDX-License-Identifier: Apache-2.0
// Times in the city's zone (from GET /v1/health, default Asia/Shanghai), sizes, percentages.
import { signal } from './signal.js';
import { t } from './i18n.js';

export const time_zone = signal('Asia/Shanghai');

const formatters = new Map();

function parts_of(date, zone, with_time) {
    const key = `${zone}|${with_time}`;
    let f = formatters.get(key);
    if (!f) {
        const opt = { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hourCycle: 'h23' };
        if (with_time) Object.assign(opt, { hour: '2-digit', minute: '2-digit' });
        try {
            f = new Intl.DateTimeFormat('en-CA', opt);
        } catch (e) {
            f = new Intl.DateTimeFormat('en-CA', { ...opt, timeZone: 'UTC' });
        }
        formatters.set(key, f);
    }
    const p = {};
    for (const x of f.formatToParts(date)) p[x.type] = x.value;
    return p;
}

// "2026-11-28 09:27" in the city's zone; "" for null.
export function local_time(iso, with_time = true) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    const p = parts_of(d, time_zone.get(), with_time);
    const day = `${p.year}-${p.month}-${p.day}`;
    return with_time ? `${day} ${p.hour}:${p.minute}` : day;
}

// The UTC spelling shown on hover.
export function utc_time(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// "YYYY-MM-DD" of today in the city's zone, and the current year and month.
export function today() {
    return local_time(new Date().toISOString(), false);
}

export function mib(v) {
    if (v === null || v === undefined) return t('dash');
    if (v >= 1024 && v % 1024 === 0) return `${v / 1024} GiB`;
    if (v >= 1024) return `${(v / 1024).toFixed(1)} GiB`;
    return `${Math.round(v)} MiB`;
}

export function gib(v) {
    return v === null || v === undefined ? t('dash') : `${v} GiB`;
}

export function bytes(v) {
    if (v === null || v === undefined) return t('dash');
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    let x = Number(v);
    while (x >= 1024 && i < units.length - 1) {
        x /= 1024;
        i++;
    }
    return `${i === 0 ? Math.round(x) : x.toFixed(1)} ${units[i]}`;
}

export function pct(share, digits = 1) {
    if (share === null || share === undefined || isNaN(share)) return t('dash');
    return `${(100 * share).toFixed(digits)}%`;
}

export function num(v, digits = 2) {
    if (v === null || v === undefined || isNaN(v)) return t('dash');
    return Number.isInteger(v) ? String(v) : Number(v).toFixed(digits);
}

// How long since @iso, in days or hours.
export function age(iso, now = Date.now()) {
    if (!iso) return t('dash');
    const h = Math.max(0, (now - new Date(iso).getTime()) / 3600000);
    return h >= 48 ? t('wait_days', { n: Math.floor(h / 24) }) : t('wait_hours', { n: Math.floor(h) });
}
