// SPDX-License-Identifier: Apache-2.0
// The admin's pages (departments and quotas, accounts, policies, health), the auditor's audit
// trail, and everyone's notifications.
import { useState } from 'preact/hooks';
import { get, get_all, patch, post, unread } from '../api.js';
import { t, tv } from '../i18n.js';
import { mib } from '../fmt.js';
import { navigate, href } from '../router.js';
import {
    Action, Badge, EnumSelect, Err, Facts, Field, Form, Link, Loaded, Loading, Name, Notice, Page, Pager,
    Secret, Section, Table, Time, useLoad, usePaged,
} from '../ui.jsx';

const ROLES = ['admin', 'reviewer', 'consultant', 'vendor', 'auditor', 'department'];

// ---- departments and quotas

export function Departments({ role }) {
    const p = usePaged('departments', {});
    return (
        <Page title={t('departments')} wide>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('departments')} count={p.items.length}
                    head={[t('name'), t('code'), `${t('quota')} vCPU`, `${t('quota')} ${t('memory')}`, `${t('quota')} ${t('disk')}`, `${t('quota')} ${t('instances')}`, t('updated_at')]}>
                    {p.items.map((d) => (
                        <tr>
                            <td><Link to={`/departments/${d.id}`}>{d.name}</Link></td>
                            <td>{d.code}</td>
                            <td>{d.quota.vcpus}</td>
                            <td>{mib(d.quota.memory_mib)}</td>
                            <td>{d.quota.disk_gib} GiB</td>
                            <td>{d.quota.instances}</td>
                            <td><Time iso={d.updated_at} /></td>
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
            {role === 'admin' ? (
                <Section title={t('new_department')}>
                    <DepartmentForm onDone={(d) => navigate(`/departments/${d.id}`)} />
                </Section>
            ) : null}
        </Page>
    );
}

function DepartmentForm({ dept, onDone }) {
    const [code, setCode] = useState('');
    const [name, setName] = useState(dept ? dept.name : '');
    const [quota, setQuota] = useState(dept ? { ...dept.quota } : { vcpus: '', memory_mib: '', disk_gib: '', instances: '' });
    const setQ = (k, v) => setQuota({ ...quota, [k]: v === '' ? '' : parseInt(v, 10) });
    const body_quota = () => Object.fromEntries(Object.entries(quota).filter(([, v]) => v !== '' && !isNaN(v)));
    return (
        <Form submit={dept ? t('save') : t('create')} label={dept ? t('edit_quota') : t('new_department')} done={t('done')}
            onSubmit={async () => {
                const q = body_quota();
                const d = dept ? await patch(`departments/${dept.id}`, { name, ...(Object.keys(q).length ? { quota: q } : {}) })
                    : await post('departments', { code, name, ...(Object.keys(q).length ? { quota: q } : {}) });
                onDone(d);
                return d;
            }}>
            {!dept ? <Field label={t('code')} hint="a-z 0-9 -"><input required pattern="[a-z0-9][a-z0-9\-]{0,31}" value={code} onInput={(e) => setCode(e.currentTarget.value)} /></Field> : null}
            <Field label={t('name')} wide><input required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} /></Field>
            <Field label={`${t('quota')} · vCPU`}><input type="number" min="0" value={quota.vcpus} onInput={(e) => setQ('vcpus', e.currentTarget.value)} /></Field>
            <Field label={`${t('quota')} · ${t('memory_mib')}`}><input type="number" min="0" value={quota.memory_mib} onInput={(e) => setQ('memory_mib', e.currentTarget.value)} /></Field>
            <Field label={`${t('quota')} · ${t('disk_gib')}`}><input type="number" min="0" value={quota.disk_gib} onInput={(e) => setQ('disk_gib', e.currentTarget.value)} /></Field>
            <Field label={`${t('quota')} · ${t('instances')}`}><input type="number" min="0" value={quota.instances} onInput={(e) => setQ('instances', e.currentTarget.value)} /></Field>
        </Form>
    );
}

export function DepartmentPage({ id, role }) {
    const r = useLoad(() => get(`departments/${id}`), [id]);
    return (
        <Page title={r.data ? r.data.name : t('department')} wide>
            <Loaded r={r}>{(d) => (
                <>
                    <Facts rows={[[t('name'), d.name], [t('code'), d.code], [t('created_at'), <Time iso={d.created_at} />]]} />
                    <Table caption={t('quota')} head={['', t('vcpus'), t('memory'), t('disk'), t('instances')]}>
                        {[['quota', d.quota], ['quota_allocated', d.usage && d.usage.allocated], ['quota_approved', d.usage && d.usage.approved], ['quota_headroom', d.usage && d.usage.headroom]]
                            .filter(([, v]) => v).map(([k, v]) => (
                                <tr><th scope="row">{t(k)}</th><td>{v.vcpus}</td><td>{mib(v.memory_mib)}</td><td>{v.disk_gib} GiB</td><td>{v.instances}</td></tr>
                            ))}
                    </Table>
                    {role === 'admin' || role === 'reviewer' ? (
                        <Section title={t('edit_quota')}>
                            <DepartmentForm dept={d} onDone={() => r.reload()} />
                        </Section>
                    ) : null}
                </>
            )}</Loaded>
        </Page>
    );
}

// ---- accounts

export function Accounts({ role, query }) {
    const [rl, setRl] = useState(query.role || '');
    const p = usePaged('accounts', { role: rl });
    const [secret, setSecret] = useState(null);
    const link = (tok) => `${window.location.href.split('#')[0]}${tok.path}`;
    return (
        <Page title={t('accounts')} wide>
            <div class="filters">
                <Field label={t('role')}><EnumSelect prefix="role" values={ROLES} value={rl} onChange={setRl} any /></Field>
            </div>
            {secret ? <Secret label={secret.label} value={secret.value} /> : null}
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('accounts')} count={p.items.length}
                    head={[t('name'), t('role'), t('department'), t('state'), t('has_password'), t('created_at'), ...(role === 'admin' ? [t('actions')] : [])]}>
                    {p.items.map((a) => (
                        <tr data-account={a.name}>
                            <td>{a.name}</td>
                            <td>{tv('role', a.role)}</td>
                            <td>{a.department_id ? <Name type="department" id={a.department_id} name={a.department_name} /> : t('dash')}</td>
                            <td>{a.disabled ? <span class="mark mark-fail">{t('disabled')}</span> : <span class="mark mark-ok">{t('active')}</span>}</td>
                            <td>{a.has_password === undefined ? t('dash') : a.has_password ? t('yes') : t('no')}</td>
                            <td><Time iso={a.created_at} /></td>
                            {role === 'admin' ? (
                                <td class="cell-actions">
                                    <Action onRun={async () => {
                                        const x = await post(`accounts/${a.id}/sign-in-link`, {});
                                        setSecret({ label: `${a.name}: ${t('sign_in_link_made', { t: '' })}`, value: link(x) });
                                    }}>{t('sign_in_link')}</Action>
                                    <Action onRun={async () => {
                                        const x = await post(`accounts/${a.id}/token`, {});
                                        setSecret({ label: `${a.name}: ${t('token_made')}`, value: x.token });
                                    }} confirm_text={t('new_token')}>{t('new_token')}</Action>
                                    {a.id !== 1 ? (
                                        <Action onRun={async () => {
                                            await patch(`accounts/${a.id}`, { disabled: !a.disabled });
                                            p.reload();
                                        }}>{a.disabled ? t('enable') : t('disable')}</Action>
                                    ) : null}
                                </td>
                            ) : null}
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
            {role === 'admin' ? (
                <Section title={t('new_account')}>
                    <AccountForm onDone={(x, linkdoc) => {
                        setSecret({ label: `${x.account.name}: ${t('sign_in_link_made', { t: '' })}`, value: link(linkdoc) });
                        p.reload();
                    }} />
                </Section>
            ) : null}
        </Page>
    );
}

function AccountForm({ onDone }) {
    const depts = useLoad(() => get_all('departments'), []);
    const [name, setName] = useState('');
    const [role, setRole] = useState('department');
    const [dept, setDept] = useState('');
    const [email, setEmail] = useState('');
    return (
        <Loaded r={depts}>{(ds) => (
            <Form submit={t('create')} label={t('new_account')}
                onSubmit={async () => {
                    const body = { name, role };
                    if (role === 'department') body.department_id = Number(dept || (ds[0] && ds[0].id));
                    if (email) body.email = email;
                    const x = await post('accounts', body);
                    const l = await post(`accounts/${x.account.id}/sign-in-link`, {});
                    setName('');
                    onDone(x, l);
                }}>
                <Field label={t('username')}><input required pattern="[a-z0-9][a-z0-9._\-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} /></Field>
                <Field label={t('role')}><EnumSelect prefix="role" values={ROLES} value={role} onChange={setRole} /></Field>
                {role === 'department' ? (
                    <Field label={t('department')}>
                        <select value={dept} required onChange={(e) => setDept(e.currentTarget.value)}>
                            {ds.map((d) => <option value={d.id}>{d.name}</option>)}
                        </select>
                    </Field>
                ) : null}
                <Field label={t('email')}><input type="email" value={email} onInput={(e) => setEmail(e.currentTarget.value)} /></Field>
            </Form>
        )}</Loaded>
    );
}

// ---- policies, health

export function Policies() {
    const r = useLoad(() => get('policies'), []);
    return (
        <Page title={t('policies')} wide>
            <p>{t('policies_intro')}</p>
            <Loaded r={r}>{(p) => Object.entries(p).map(([k, v]) => (
                <Section title={k}>
                    <pre class="json" tabindex="0">{JSON.stringify(v, null, 2)}</pre>
                </Section>
            ))}</Loaded>
        </Page>
    );
}

export function Health({ role }) {
    const r = useLoad(async () => {
        const h = await get('health');
        let m = null;
        try {
            const x = await fetch('metrics', { credentials: 'same-origin', cache: 'no-store' });
            if (x.ok) m = await x.text();
        } catch (e) {
            m = null;
        }
        return { h, m };
    }, []);
    return (
        <Page title={t('health')} wide>
            <Loaded r={r}>{(d) => (
                <>
                    <Facts rows={[[t('status'), <span class={`mark mark-${d.h.status === 'ok' ? 'ok' : 'fail'}`}>{d.h.status}</span>], [t('version'), d.h.version], d.h.time_zone ? ['TZ', d.h.time_zone] : null]} />
                    {d.m ? (
                        <Table caption="/metrics" head={[t('metric'), t('value')]}>
                            {d.m.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
                                const i = l.lastIndexOf(' ');
                                return <tr><td><code>{l.slice(0, i)}</code></td><td>{l.slice(i + 1)}</td></tr>;
                            })}
                        </Table>
                    ) : null}
                </>
            )}</Loaded>
        </Page>
    );
}

// ---- audit trail (auditor, reviewer)

export function Audit({ query }) {
    const [f, setF] = useState({ object_type: query.object_type || '', object_id: query.object_id || '', action: query.action || '', account: query.account || '', from: query.from || '', to: query.to || '' });
    const [applied, setApplied] = useState(f);
    // The time fields are the browser's local time (the city's, on its office PCs).
    const utc = (v) => (v ? `${new Date(v).toISOString().slice(0, 19)}Z` : '');
    const p = usePaged('audit', { ...applied, from: utc(applied.from), to: utc(applied.to) });
    const [verify, setVerify] = useState(null);
    const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
    const shown = p.items;
    return (
        <Page title={t('audit')} wide>
            <form class="filters" onSubmit={(e) => {
                e.preventDefault();
                setApplied(f);
                navigate(href('/audit', f), true);
            }} aria-label={t('search')}>
                <Field label={t('object_type')}><input value={f.object_type} onInput={set('object_type')} /></Field>
                <Field label={t('object_id')}><input inputMode="numeric" pattern="[0-9]*" value={f.object_id} onInput={set('object_id')} /></Field>
                <Field label={t('action')}><input value={f.action} onInput={set('action')} /></Field>
                <Field label={t('account')}><input value={f.account} onInput={set('account')} /></Field>
                <Field label={t('from')}><input type="datetime-local" value={f.from} onInput={set('from')} /></Field>
                <Field label={t('to')}><input type="datetime-local" value={f.to} onInput={set('to')} /></Field>
                <div class="form-actions"><button type="submit" class="btn-primary">{t('search')}</button></div>
            </form>
            <div class="verify">
                <Action onRun={async () => setVerify(await get('audit/verify'))}>{t('verify_chain')}</Action>
                {verify ? (
                    <p class={verify.ok ? 'notice notice-ok' : 'notice notice-bad'} role="status" data-testid="verify">
                        {verify.ok ? t('chain_ok', { n: verify.records, h: verify.head_hash }) : t('chain_bad', { s: verify.first_bad, r: verify.reason })}
                    </p>
                ) : null}
            </div>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('audit')} count={shown.length}
                    head={[t('seq'), t('time'), t('account'), t('role'), t('action'), t('object_type'), t('outcome'), t('client'), t('details')]}>
                    {shown.map((x) => (
                        <tr>
                            <td>{x.seq}</td>
                            <td><Time iso={x.at} /></td>
                            <td>{x.account}</td>
                            <td>{tv('role', x.role)}</td>
                            <td><code>{x.action}</code></td>
                            <td>{x.object_type ? <ObjLink type={x.object_type} id={x.object_id} /> : t('dash')}</td>
                            <td>{x.outcome}</td>
                            <td>{x.client}</td>
                            <td>{x.detail ? <details><summary>JSON</summary><pre class="json">{JSON.stringify(x.detail, null, 2)}</pre></details> : ''}</td>
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
        </Page>
    );
}

const OBJ_ROUTES = { request: 'requests', allocation: 'allocations', job: 'jobs', finding: 'findings', system: 'systems', department: 'departments' };

export function ObjLink({ type, id, name }) {
    const label = name || `${tv('obj', type)} #${id}`;
    return OBJ_ROUTES[type] && id ? <Link to={`/${OBJ_ROUTES[type]}/${id}`}>{label}</Link> : <span>{label}</span>;
}

// ---- notifications

export function Notifications() {
    const [only, setOnly] = useState(false);
    const p = usePaged('notifications', { unread: only ? 'true' : '' }, 30);
    const refresh_count = () => get('whoami').then((w) => typeof w.unread_notifications === 'number' && unread.set(w.unread_notifications), () => {});
    return (
        <Page title={t('notifications')} actions={
            <Action onRun={async () => {
                await post('notifications/read-all', {});
                p.reload();
                refresh_count();
            }}>{t('mark_all_read')}</Action>
        }>
            <div class="filters">
                <div class="check">
                    <input type="checkbox" id="unread-only" checked={only} onChange={(e) => setOnly(e.currentTarget.checked)} />
                    <label for="unread-only">{t('unread_only')}</label>
                </div>
            </div>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                p.items.length === 0 ? <p class="empty">{t('empty_list')}</p> : (
                    <ul class="notes">
                        {p.items.map((n) => (
                            <li class={n.read ? 'note' : 'note note-unread'} data-kind={n.kind}>
                                <p>
                                    {!n.read ? <span class="tag tag-new">{t('unread')}</span> : null}
                                    <NoteText n={n} />
                                </p>
                                <p class="note-meta">
                                    <Time iso={n.at} />
                                    {!n.read ? (
                                        <Action onRun={async () => {
                                            await post(`notifications/${n.id}/read`, {});
                                            p.reload();
                                            refresh_count();
                                        }}>{t('mark_read')}</Action>
                                    ) : null}
                                </p>
                            </li>
                        ))}
                    </ul>
                )
            )}
            <Pager p={p} />
        </Page>
    );
}

function NoteText({ n }) {
    const key = `n_${n.kind}`;
    const obj = n.object_name || `${tv('obj', n.object_type)} #${n.object_id}`;
    // The template's text around the object's name; the name itself is a link.
    const text = t(key in NOTE_KEYS ? key : 'n_unknown', { actor: n.actor_name || t('role_system'), obj: '\u0000', kind: n.kind });
    const [a, b] = text.split('\u0000');
    return <span>{a}<ObjLink type={n.object_type} id={n.object_id} name={obj} />{b}</span>;
}

const NOTE_KEYS = Object.fromEntries(['request_submitted', 'consultant_assigned', 'opinion_recorded', 'request_returned',
    'request_approved', 'request_rejected', 'trial_results_recorded', 'trial_passed', 'trial_failed', 'job_failed',
    'finding_raised', 'purge_soon', 'host_disconnected'].map((k) => [`n_${k}`, true]));
