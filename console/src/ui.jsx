// SPDX-License-Identifier: Apache-2.0
// The building blocks of every page: loading, errors, tables with pages, forms, names, times.
// Text from the API is always rendered as text (Preact escapes it); nothing uses
// dangerouslySetInnerHTML.
import { cloneElement } from 'preact';
import { useCallback, useEffect, useId, useRef, useState } from 'preact/hooks';
import { get, q } from './api.js';
import { S, t, tv } from './i18n.js';
import { local_time, utc_time } from './fmt.js';

// ---- loading

// useLoad(fn, deps): runs the async @fn when @deps change; {data, error, loading, reload}.
export function useLoad(fn, deps) {
    const [st, setSt] = useState({ data: undefined, error: null, loading: true });
    const seq = useRef(0);
    const run = useCallback(() => {
        const n = ++seq.current;
        setSt((s) => ({ ...s, loading: true }));
        Promise.resolve()
            .then(fn)
            .then((data) => n === seq.current && setSt({ data, error: null, loading: false }),
                (error) => n === seq.current && setSt({ data: undefined, error, loading: false }));
    }, deps);
    useEffect(() => {
        run();
        return () => {
            seq.current++;
        };
    }, [run]);
    return { ...st, reload: run };
}

// usePoll(fn, ms, active): calls @fn every @ms while @active (live job progress).
export function usePoll(fn, ms, active) {
    const ref = useRef(fn);
    ref.current = fn;
    useEffect(() => {
        if (!active) return undefined;
        const id = setInterval(() => ref.current(), ms);
        return () => clearInterval(id);
    }, [ms, active]);
}

// usePaged(path, params, limit): one page of a list endpoint and the cursors to move on.
export function usePaged(path, params, limit = 50) {
    const key = JSON.stringify(params || {});
    const [stack, setStack] = useState([0]);
    useEffect(() => setStack([0]), [path, key]);
    const after = stack[stack.length - 1];
    const r = useLoad(() => get(path + q({ ...params, limit, after: after || undefined })), [path, key, after]);
    return {
        ...r,
        items: r.data ? r.data.items : [],
        page: stack.length,
        has_prev: stack.length > 1,
        has_next: !!(r.data && r.data.next && r.data.items.length === limit),
        next: () => r.data && r.data.next && setStack([...stack, r.data.next]),
        prev: () => stack.length > 1 && setStack(stack.slice(0, -1)),
    };
}

export function Loading() {
    return <p class="loading" role="status">{t('loading')}</p>;
}

// The words for an API error: the console's own for the codes people meet, else the
// broker's message with the field it names.
export function error_text(e) {
    if (!e) return '';
    if (e.status === 404) return t('not_found');
    if (e.status === 403 && e.code === 'forbidden') return t('forbidden');
    const own = {
        invalid_credentials: 'invalid_credentials',
        too_many_attempts: 'too_many_attempts',
        invalid_token: 'invalid_token',
    }[e.code];
    let s = own ? t(own) : `${t('error_prefix')}${e.message}`;
    if (!own && e.field) s += t('error_field', { f: e.field });
    if (e.retry_after) s += ` ${t('retry_after', { n: e.retry_after })}`;
    return s;
}

export function Err({ error }) {
    if (!error) return null;
    return <p class="error" role="alert" data-code={error.code}>{error_text(error)}</p>;
}

export function Notice({ children, kind = 'ok' }) {
    return <p class={`notice notice-${kind}`} role="status">{children}</p>;
}

// Shows @r's loading state or error, else calls @children(data).
export function Loaded({ r, children }) {
    if (r.error) return <Err error={r.error} />;
    if (r.data === undefined) return <Loading />;
    return children(r.data);
}

// ---- page frame

export function Page({ title, actions, children, wide }) {
    useEffect(() => {
        document.title = `${title} · ${t('app_name')}`;
    }, [title]);
    return (
        <section class={wide ? 'page page-wide' : 'page'} aria-labelledby="page-title">
            <div class="page-head">
                <h1 id="page-title" tabindex="-1">{title}</h1>
                {actions ? <div class="page-actions">{actions}</div> : null}
            </div>
            {children}
        </section>
    );
}

export function Section({ title, children, id }) {
    const hid = useId();
    return (
        <section class="section" aria-labelledby={hid} id={id}>
            <h2 id={hid}>{title}</h2>
            {children}
        </section>
    );
}

export function Link({ to, children, ...rest }) {
    return <a href={`#${to}`} {...rest}>{children}</a>;
}

// ---- values

export function Time({ iso, date }) {
    if (!iso) return <span>{t('dash')}</span>;
    return <time datetime={iso} title={t('utc_hint', { t: utc_time(iso) })}>{local_time(iso, !date)}</time>;
}

export function Badge({ prefix, value }) {
    return <span class={`badge badge-${prefix}-${value}`}>{tv(prefix, value)}</span>;
}

export function Bar({ percent, label }) {
    const p = Math.max(0, Math.min(100, Math.round(percent || 0)));
    return (
        <span class="bar-box">
            <span class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow={p}
                aria-label={label}>
                <span class="bar-fill" ref={(el) => el && el.style.setProperty('width', `${p}%`)} />
            </span>
            <span class="bar-text">{p}%</span>
        </span>
    );
}

// ---- names beside ids

const name_cache = new Map();
const name_paths = { system: 'systems', department: 'departments', account: 'accounts', host: 'hosts' };

function fetch_name(type, id) {
    const key = `${type}:${id}`;
    if (!name_cache.has(key)) {
        name_cache.set(key, get(`${name_paths[type]}/${id}`).then((o) => o.name, () => null));
    }
    return name_cache.get(key);
}

export function remember_name(type, id, name) {
    if (id && name) name_cache.set(`${type}:${id}`, Promise.resolve(name));
}

// The name of object @type #@id: @name when the API gave it, else looked up (once per
// object); while unknown, a placeholder. Linked to the object's page when @to is given.
export function Name({ type, id, name, to }) {
    const [n, setN] = useState(name || null);
    useEffect(() => {
        if (name) {
            setN(name);
            remember_name(type, id, name);
            return undefined;
        }
        if (!id) return undefined;
        let live = true;
        fetch_name(type, id).then((v) => live && setN(v));
        return () => {
            live = false;
        };
    }, [type, id, name]);
    if (!id && !name) return <span>{t('dash')}</span>;
    const text = n || `${tv('obj', type)} #${id}`;
    return to ? <Link to={to}>{text}</Link> : <span>{text}</span>;
}

// ---- tables

// A table inside a scrollable, focusable region (so keyboard users can scroll it on a phone).
export function Table({ caption, head, children, empty, count }) {
    const cid = useId();
    if (count === 0) return <p class="empty">{empty || t('empty_list')}</p>;
    return (
        <div class="table-wrap" role="region" aria-labelledby={cid} tabindex="0">
            <table>
                <caption id={cid}>{caption}</caption>
                <thead>
                    <tr>{head.map((h) => <th scope="col">{h}</th>)}</tr>
                </thead>
                <tbody>{children}</tbody>
            </table>
        </div>
    );
}

export function Pager({ p }) {
    if (!p.has_prev && !p.has_next) return null;
    return (
        <nav class="pager" aria-label={t('page_n', { n: p.page })}>
            <button type="button" onClick={p.prev} disabled={!p.has_prev}>{t('prev_page')}</button>
            <span>{t('page_n', { n: p.page })}</span>
            <button type="button" onClick={p.next} disabled={!p.has_next}>{t('next_page')}</button>
        </nav>
    );
}

// ---- forms

export function Field({ label, hint, children, wide }) {
    const id = useId();
    const hid = hint ? `${id}-hint` : undefined;
    const child = Array.isArray(children) ? children[0] : children;
    const input = child && child.props ? cloneElement(child, { id, 'aria-describedby': hid }) : child;
    return (
        <div class={wide ? 'field field-wide' : 'field'}>
            <label for={id}>{label}</label>
            {input}
            {hint ? <small id={hid} class="hint">{hint}</small> : null}
        </div>
    );
}

export function Check({ label, checked, onChange, disabled }) {
    const id = useId();
    return (
        <div class="check">
            <input type="checkbox" id={id} checked={checked} disabled={disabled}
                onChange={(e) => onChange(e.currentTarget.checked)} />
            <label for={id}>{label}</label>
        </div>
    );
}

// A <select> of an enumerated value with its translated labels.
export function EnumSelect({ prefix, values, value, onChange, any, required, id, ...rest }) {
    return (
        <select id={id} aria-describedby={rest['aria-describedby']} value={value} required={required}
            onChange={(e) => onChange(e.currentTarget.value)}>
            {any ? <option value="">{t('all')}</option> : null}
            {values.map((v) => <option value={v}>{tv(prefix, v)}</option>)}
        </select>
    );
}

// A button that runs an async action: disabled while it runs, its error shown beside it.
export function Action({ onRun, children, kind, confirm_text, disabled }) {
    const [busy, setBusy] = useState(false);
    const [err, setErr] = useState(null);
    const run = async () => {
        if (confirm_text && !window.confirm(confirm_text)) return;
        setBusy(true);
        setErr(null);
        try {
            await onRun();
        } catch (e) {
            setErr(e);
        } finally {
            setBusy(false);
        }
    };
    return (
        <span class="action">
            <button type="button" class={kind ? `btn-${kind}` : ''} disabled={busy || disabled} onClick={run}>
                {children}
            </button>
            <Err error={err} />
        </span>
    );
}

// A <form> whose submit runs async @onSubmit; shows busy state, error and a success notice.
export function Form({ onSubmit, submit, children, done, class: cls, label }) {
    const [busy, setBusy] = useState(false);
    const [err, setErr] = useState(null);
    const [ok, setOk] = useState(null);
    const run = async (e) => {
        e.preventDefault();
        setBusy(true);
        setErr(null);
        setOk(null);
        try {
            const r = await onSubmit();
            if (done) setOk(typeof done === 'function' ? done(r) : done);
        } catch (x) {
            setErr(x);
        } finally {
            setBusy(false);
        }
    };
    return (
        <form class={cls ? `form ${cls}` : 'form'} onSubmit={run} aria-label={label} noValidate={false}>
            {children}
            <div class="form-actions">
                <button type="submit" class="btn-primary" disabled={busy}>{busy ? t('saving') : submit}</button>
            </div>
            <Err error={err} />
            {ok ? <Notice>{ok}</Notice> : null}
        </form>
    );
}

// Shows a secret (a token, a sign-in link) the broker shows only once.
export function Secret({ label, value }) {
    return (
        <div class="secret" role="status">
            <p>{label}</p>
            <code class="secret-value">{value}</code>
            <p class="hint">{t('copied_once')}</p>
        </div>
    );
}

// Definitions list from [[label, value], ...].
export function Facts({ rows }) {
    return (
        <dl class="facts">
            {rows.filter(Boolean).map(([k, v]) => (
                <div class="fact">
                    <dt>{k}</dt>
                    <dd>{v}</dd>
                </div>
            ))}
        </dl>
    );
}

export function Resources({ r }) {
    if (!r) return <span>{t('dash')}</span>;
    return <span>{`${r.vcpus} vCPU · ${mib_text(r.memory_mib)} · ${r.disk_gib} GiB`}</span>;
}

function mib_text(v) {
    if (v >= 1024 && v % 1024 === 0) return `${v / 1024} GiB`;
    return `${v} MiB`;
}

// Names of object types, for placeholders and notifications.
Object.assign(S, {
    obj_system: ['应用系统', 'System'],
    obj_department: ['单位', 'Department'],
    obj_account: ['账号', 'Account'],
    obj_host: ['宿主机', 'Host'],
    obj_request: ['申请', 'Request'],
    obj_allocation: ['资源分配', 'Allocation'],
    obj_job: ['任务', 'Job'],
    obj_finding: ['评估发现', 'Finding'],
    obj_instance: ['实例', 'Instance'],
});
