// SPDX-License-Identifier: Apache-2.0
// Requests: the lists (mine, assigned, the approval queue, trials), the new-request form, and
// the request page with materials, the pre-review check, the timeline and each role's actions.
import { useEffect, useState } from 'preact/hooks';
import { get, get_all, patch, post, upload } from '../api.js';
import { t, tv } from '../i18n.js';
import { age, bytes, mib } from '../fmt.js';
import { navigate } from '../router.js';
import {
    Action, Badge, Bar, EnumSelect, Err, Facts, Field, Form, Link, Loaded, Loading, Name, Page,
    Pager, Resources, Section, Table, Time, useLoad, usePaged, usePoll,
} from '../ui.jsx';

export const REQUEST_STATES = ['draft', 'submitted', 'returned', 'rejected', 'withdrawn', 'approved', 'in_trial',
    'trial_passed', 'trial_failed', 'allocated', 'applying', 'applied', 'reclaiming', 'reclaimed', 'failed'];
const KINDS = ['new', 'change', 'termination'];
const MATERIAL_KINDS = ['construction_plan', 'performance_self_test', 'security_self_test', 'backup_proof', 'other'];
const TESTS = ['function', 'performance', 'security'];

// The presets of the size picker; the review policy's per-instance limits still apply.
const SIZES = {
    small: { vcpus: 1, memory_mib: 2048, disk_gib: 40 },
    medium: { vcpus: 2, memory_mib: 4096, disk_gib: 80 },
    large: { vcpus: 4, memory_mib: 8192, disk_gib: 100 },
    xlarge: { vcpus: 8, memory_mib: 16384, disk_gib: 200 },
};

function size_of(i) {
    for (const [k, v] of Object.entries(SIZES)) {
        if (v.vcpus === i.vcpus && v.memory_mib === i.memory_mib && v.disk_gib === i.disk_gib) return k;
    }
    return 'custom';
}

// ---- lists

function RequestRows({ items, role, queue }) {
    const now = Date.now();
    return items.map((r) => (
        <tr>
            <td><Link to={`/requests/${r.id}`}>{t('request_n', { n: r.id })}</Link></td>
            {queue ? <td>{age(r.submitted_at || r.updated_at, now)}</td> : null}
            {role !== 'department' ? <td><Name type="department" id={r.department_id} name={r.department_name} /></td> : null}
            <td><Name type="system" id={r.system_id} name={r.system_name || (r.system && r.system.name)} /></td>
            <td>{tv('kind', r.kind)}</td>
            <td><Badge prefix="rs" value={r.state} /></td>
            <td><Resources r={r.totals} /></td>
            {queue ? <td>{r.check_ok === undefined ? t('dash') : <CheckMark ok={r.check_ok} />}</td> : <td><Time iso={r.updated_at} /></td>}
        </tr>
    ));
}

function CheckMark({ ok }) {
    return <span class={ok ? 'mark mark-ok' : 'mark mark-fail'}>{ok ? t('check_ok') : t('check_fail')}</span>;
}

export function RequestList({ role, query }) {
    const [state, setState] = useState(query.state || '');
    const [kind, setKind] = useState(query.kind || '');
    const p = usePaged('requests', { state, kind });
    const title = role === 'department' ? t('nav_my_requests') : role === 'consultant' ? t('nav_assigned') : t('nav_requests');
    return (
        <Page title={title} actions={role === 'department' ? <Link to="/requests/new" class="btn-link btn-primary">{t('new_request')}</Link> : null}>
            <div class="filters">
                <Field label={t('requests_filter_state')}>
                    <EnumSelect prefix="rs" values={REQUEST_STATES} value={state} onChange={setState} any />
                </Field>
                <Field label={t('requests_filter_kind')}>
                    <EnumSelect prefix="kind" values={KINDS} value={kind} onChange={setKind} any />
                </Field>
            </div>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={title} count={p.items.length}
                    head={[t('request'), ...(role !== 'department' ? [t('department')] : []), t('system'), t('kind'), t('state'), t('totals'), t('updated_at')]}>
                    <RequestRows items={p.items} role={role} />
                </Table>
            )}
            <Pager p={p} />
        </Page>
    );
}

// What waits for the caller (GET /v1/queue): the bureau's approval queue, the vendor's trials,
// the consultant's assignments, a department's returned requests; oldest first.
export function Queue({ role }) {
    const r = useLoad(() => get('queue?limit=200'), []);
    return (
        <Page title={role === 'vendor' ? t('trials') : role === 'reviewer' ? t('nav_queue') : t('nav_todo')} wide>
            {role === 'vendor' ? <p>{t('trials_intro')}</p> : null}
            <Loaded r={r}>{(d) => <QueueTable items={d.items} />}</Loaded>
        </Page>
    );
}

function QueueTable({ items }) {
    const now = Date.now();
    return (
        <Table caption={t('nav_queue')} count={items.length}
            head={[t('request'), t('queue_action'), t('waiting_since'), t('department'), t('system'), t('kind'), t('state'), t('totals'), t('precheck')]}>
            {items.map((x) => (
                <tr data-request={x.id}>
                    <td><Link to={`/requests/${x.id}`}>{t('request_n', { n: x.id })}</Link></td>
                    <td>{tv('qa', x.action)}</td>
                    <td title={x.waiting_since}>{age(x.waiting_since, now)}</td>
                    <td>{x.department_name}</td>
                    <td>{x.system_name}</td>
                    <td>{tv('kind', x.kind)}</td>
                    <td><Badge prefix="rs" value={x.state} /></td>
                    <td>{x.instances ? `${x.vcpus} vCPU · ${mib(x.memory_mib)} · ${x.disk_gib} GiB · ${x.instances} ×` : t('dash')}</td>
                    <td>{x.precheck ? (
                        <span>
                            <CheckMark ok={!x.precheck.failed.length} />
                            {x.precheck.failed.length ? ` ${x.precheck.failed.map((k) => tv('rule', k)).join('、')}` : ''}
                            {x.precheck.advisory.length ? <small class="muted">{` (${t('rule_advisory')}: ${x.precheck.advisory.map((k) => tv('rule', k)).join('、')})`}</small> : null}
                        </span>
                    ) : t('dash')}</td>
                </tr>
            ))}
        </Table>
    );
}

// ---- the form

function InstanceEditor({ inst, onChange, images, limits }) {
    const set = (i, k, v) => onChange(inst.map((x, j) => (j === i ? { ...x, [k]: v } : x)));
    const setSize = (i, k) => {
        if (k !== 'custom') onChange(inst.map((x, j) => (j === i ? { ...x, ...SIZES[k] } : x)));
    };
    const int = (v) => (v === '' ? '' : parseInt(v, 10));
    return (
        <fieldset class="instances">
            <legend>{t('instances')}</legend>
            {limits ? <p class="hint">{t('limits_note', { v: limits.max_vcpus, m: mib(limits.max_memory_mib), d: limits.max_disk_gib, n: limits.max_instances })}</p> : null}
            {inst.map((x, i) => (
                <fieldset class="instance">
                    <legend>{t('instance_n', { n: i + 1 })}</legend>
                    <Field label={t('size')}>
                        <select value={size_of(x)} onChange={(e) => setSize(i, e.currentTarget.value)}>
                            {Object.keys(SIZES).map((k) => <option value={k}>{t(`size_${k}`)}</option>)}
                            <option value="custom">{t('size_custom')}</option>
                        </select>
                    </Field>
                    <Field label={t('vcpus')}>
                        <input type="number" min="1" max={limits ? limits.max_vcpus : undefined} required value={x.vcpus}
                            onInput={(e) => set(i, 'vcpus', int(e.currentTarget.value))} />
                    </Field>
                    <Field label={t('memory_mib')}>
                        <input type="number" min="64" step="64" max={limits ? limits.max_memory_mib : undefined} required value={x.memory_mib}
                            onInput={(e) => set(i, 'memory_mib', int(e.currentTarget.value))} />
                    </Field>
                    <Field label={t('disk_gib')}>
                        <input type="number" min="1" max={limits ? limits.max_disk_gib : undefined} required value={x.disk_gib}
                            onInput={(e) => set(i, 'disk_gib', int(e.currentTarget.value))} />
                    </Field>
                    <Field label={t('image')}>
                        <select value={x.image} required onChange={(e) => set(i, 'image', e.currentTarget.value)}>
                            {images.map((n) => <option value={n}>{n}</option>)}
                        </select>
                    </Field>
                    {inst.length > 1 ? (
                        <button type="button" class="btn-quiet" onClick={() => onChange(inst.filter((_, j) => j !== i))}>
                            {t('remove_instance', { n: i + 1 })}
                        </button>
                    ) : null}
                </fieldset>
            ))}
            <button type="button" onClick={() => onChange([...inst, { ...SIZES.small, image: images[0] || '' }])}
                disabled={limits && inst.length >= limits.max_instances}>{t('add_instance')}</button>
        </fieldset>
    );
}

export function RequestForm({ id, query }) {
    const r = useLoad(async () => {
        const [systems, pol, req] = await Promise.all([
            get_all('systems'),
            get('policies'),
            id ? get(`requests/${id}`) : Promise.resolve(null),
        ]);
        return { systems, pol, req };
    }, [id]);
    return (
        <Page title={id ? t('edit_request') : t('new_request')}>
            <Loaded r={r}>{(d) => <RequestFormBody d={d} id={id} query={query} />}</Loaded>
        </Page>
    );
}

function RequestFormBody({ d, id, query }) {
    const images = ((d.pol.catalog && d.pol.catalog.images) || []).map((i) => i.name);
    const limits = d.pol.review && d.pol.review.rules && d.pol.review.rules.instance_limits;
    const req = d.req;
    const [system, setSystem] = useState(req ? req.system_id : Number(query.system) || (d.systems[0] && d.systems[0].id) || '');
    const [kind, setKind] = useState(req ? req.kind : query.kind || 'new');
    const [allocation, setAllocation] = useState(req ? req.allocation_id : Number(query.allocation) || '');
    const [inst, setInst] = useState(req && req.resources ? req.resources.instances : [{ ...SIZES.small, image: images[0] || '' }]);
    const [just, setJust] = useState(req ? req.justification : '');
    const [restart, setRestart] = useState(req ? !!req.restart_allowed : false);
    const allocs = useLoad(() => (system && kind !== 'new'
        ? get_all('allocations', { system, purpose: 'production', state: 'active' }) : Promise.resolve([])), [system, kind]);

    // A change starts from the allocation's instances as they are.
    useEffect(() => {
        if (req || kind !== 'change' || !allocation) return;
        get(`allocations/${allocation}`).then((a) => {
            const live = a.instances.filter((x) => x.state !== 'deleted');
            if (live.length) setInst(live.map((x) => ({ vcpus: x.vcpus, memory_mib: x.memory_mib, disk_gib: x.disk_gib, image: x.image })));
        }, () => {});
    }, [kind, allocation]);

    const save = async () => {
        let doc;
        if (req) {
            const body = { justification: just };
            if (kind !== 'termination') body.resources = { instances: inst };
            if (kind === 'change') body.restart_allowed = restart;
            doc = await patch(`requests/${id}`, body);
        } else {
            const body = { system: Number(system), kind, justification: just };
            if (kind !== 'new') body.allocation = Number(allocation);
            if (kind !== 'termination') body.resources = { instances: inst };
            if (kind === 'change') body.restart_allowed = restart;
            doc = await post('requests', body);
        }
        navigate(`/requests/${doc.id}`);
        return doc;
    };

    if (req && req.state !== 'draft' && req.state !== 'returned') {
        return <p class="notice notice-warn">{t('not_editable')} <Link to={`/requests/${req.id}`}>{t('request_n', { n: req.id })}</Link></p>;
    }
    if (!d.systems.length && !req) {
        return <p>{t('empty_list')} <Link to="/systems/new">{t('new_system')}</Link></p>;
    }
    return (
        <Form submit={req ? t('save_changes') : t('save_draft')} onSubmit={save} label={t('new_request')}>
            <Field label={t('system')}>
                <select value={system} required disabled={!!req} onChange={(e) => setSystem(Number(e.currentTarget.value))}>
                    {d.systems.map((s) => <option value={s.id}>{s.name}</option>)}
                </select>
            </Field>
            <Field label={t('kind')}>
                <select value={kind} disabled={!!req} onChange={(e) => setKind(e.currentTarget.value)}>
                    {KINDS.map((k) => <option value={k}>{tv('kind', k)}</option>)}
                </select>
            </Field>
            {kind !== 'new' && !req ? (
                <Field label={t('allocation_to_change')}>
                    <select value={allocation} required onChange={(e) => setAllocation(Number(e.currentTarget.value))}>
                        <option value="">{t('dash')}</option>
                        {(allocs.data || []).map((a) => (
                            <option value={a.id}>{`${t('allocation_n', { n: a.id })} · ${a.totals.instances} × · ${a.totals.vcpus} vCPU`}</option>
                        ))}
                    </select>
                </Field>
            ) : null}
            {kind !== 'termination' ? <InstanceEditor inst={inst} onChange={setInst} images={images} limits={limits} /> : null}
            {kind === 'change' ? <Check2 label={t('restart_allowed')} checked={restart} onChange={setRestart} /> : null}
            <Field label={t('justification')} wide>
                <textarea rows="5" required maxLength={10000} value={just} onInput={(e) => setJust(e.currentTarget.value)} />
            </Field>
        </Form>
    );
}

function Check2({ label, checked, onChange }) {
    return (
        <div class="check">
            <input type="checkbox" id="restart-allowed" checked={checked} onChange={(e) => onChange(e.currentTarget.checked)} />
            <label for="restart-allowed">{label}</label>
        </div>
    );
}

// ---- the request page

function required_materials(pol, kind) {
    const r = pol && pol.review && pol.review.rules && pol.review.rules.materials_complete;
    return (r && r.required && r.required[kind]) || [];
}

function Materials({ req, pol, role, onChange }) {
    const [preview, setPreview] = useState(null);
    const editable = role === 'department' && (req.state === 'draft' || req.state === 'returned');
    const required = required_materials(pol, req.kind);
    const present = Object.fromEntries((req.materials || []).map((m) => [m.kind, m]));
    let kinds = editable ? MATERIAL_KINDS.filter((k) => required.includes(k) || k === 'other' || present[k] || (req.kind === 'termination' && k === 'backup_proof'))
        : Object.keys(present);
    kinds = [...new Set([...required, ...kinds])];
    if (present.test_report && !kinds.includes('test_report')) kinds.push('test_report');
    const url = (k, inline) => `v1/requests/${req.id}/materials/${k}${inline ? '?disposition=inline' : ''}`;
    return (
        <Section title={t('materials')}>
            <Table caption={t('materials')} count={kinds.length}
                head={[t('material'), t('file_name'), t('file_size'), t('time'), t('actions')]}>
                {kinds.map((k) => {
                    const m = present[k];
                    return (
                        <tr data-kind={k}>
                            <td>{tv('mk', k)} {required.includes(k) ? <span class="tag">{t('required')}</span> : null}</td>
                            <td>{m ? (m.filename || t('dash')) : <span class="muted">{t('not_uploaded')}</span>}</td>
                            <td>{m ? bytes(m.size) : ''}</td>
                            <td>{m ? <Time iso={m.uploaded_at} /> : ''}</td>
                            <td class="cell-actions">
                                {m ? (
                                    <>
                                        <button type="button" class="btn-quiet" aria-pressed={preview === k ? 'true' : 'false'}
                                            onClick={() => setPreview(preview === k ? null : k)}>
                                            {preview === k ? t('hide_preview') : t('preview')}
                                        </button>
                                        <a href={url(k)} download={m.filename || k}>{t('download')}</a>
                                    </>
                                ) : null}
                                {editable && k !== 'test_report' ? <Uploader req={req} kind={k} onDone={onChange} /> : null}
                            </td>
                        </tr>
                    );
                })}
            </Table>
            {preview && present[preview] ? (
                <div class="preview">
                    <iframe src={url(preview, true)} title={t('pdf_viewer_title', { n: present[preview].filename || tv('mk', preview) })}
                        class={present[preview].media_type === 'application/pdf' ? 'pdf' : 'doc'} />
                </div>
            ) : null}
        </Section>
    );
}

function Uploader({ req, kind, onDone, label }) {
    const [pct, setPct] = useState(null);
    const [err, setErr] = useState(null);
    const pick = async (e) => {
        const f = e.currentTarget.files && e.currentTarget.files[0];
        e.currentTarget.value = '';
        if (!f) return;
        setErr(null);
        setPct(0);
        try {
            const m = await upload(`requests/${req.id}/materials/${kind}?filename=${encodeURIComponent(f.name)}`, f, setPct);
            setPct(null);
            onDone(m);
        } catch (x) {
            setPct(null);
            setErr(x);
        }
    };
    return (
        <span class="uploader">
            <label class="file-label">
                <input type="file" class="file-input" name={kind} data-kind={kind} onChange={pick} disabled={pct !== null} />
                <span class="file-button">{label || t('choose_file', { k: tv('mk', kind) })}</span>
            </label>
            {pct !== null ? <Bar percent={pct} label={t('uploading', { p: pct })} /> : null}
            <Err error={err} />
        </span>
    );
}

export function CheckRules({ check }) {
    if (!check) return null;
    // Advisory rules inform; only the enforced ones block submission and approval.
    const ok = check.rules.every((r) => r.ok || !r.enforce);
    return (
        <div class="check-rules" data-ok={ok ? 'true' : 'false'}>
            <p class={ok ? 'notice notice-ok' : 'notice notice-warn'}>{ok ? t('precheck_ok') : t('precheck_fail')}</p>
            <ul class="rules">
                {check.rules.map((r) => (
                    <li class={r.ok ? 'rule rule-ok' : 'rule rule-fail'} data-rule={r.rule}>
                        <CheckMark ok={r.ok} /> <strong>{tv('rule', r.rule)}</strong>{' '}
                        <span class="tag">{r.enforce ? t('rule_enforced') : t('rule_advisory')}</span>
                        <RuleDetail r={r} />
                    </li>
                ))}
            </ul>
        </div>
    );
}

function RuleDetail({ r }) {
    const list = (xs, p) => (xs || []).map((x) => tv(p, x)).join('、');
    if (r.rule === 'materials_complete' && r.missing && r.missing.length) return <span> — {t('missing', { x: list(r.missing, 'mk') })}</span>;
    if (r.rule === 'quota_headroom' && r.exceeded && r.exceeded.length) return <span> — {t('exceeded', { x: r.exceeded.join(', ') })}</span>;
    if (r.rule === 'instance_limits' && r.violations && r.violations.length) return <span> — {t('violations', { x: r.violations.map((v) => (typeof v === 'object' ? `#${(v.instance ?? v.index ?? 0) + 1}` : v)).join(', ') })}</span>;
    if (r.rule === 'images_in_catalog' && r.violations && r.violations.length) return <span> — {t('not_in_catalog', { x: r.violations.map((v) => (typeof v === 'object' ? v.image : v)).join(', ') })}</span>;
    if (r.rule === 'open_findings') return <span> — {t('findings_summary', { i: r.idle, o: r.over_provisioned, v: r.reclaimable_vcpus, m: mib(r.reclaimable_memory_mib) })}</span>;
    return null;
}

function Quota({ rule }) {
    if (!rule) return null;
    const rows = [['quota', rule.quota], ['quota_allocated', rule.allocated], ['quota_approved', rule.approved], ['requested', rule.requested], ['headroom_after', rule.headroom_after]];
    return (
        <Table caption={t('department_quota')} head={['', t('vcpus'), t('memory'), t('disk'), t('instances')]}>
            {rows.filter(([, v]) => v).map(([k, v]) => (
                <tr class={k === 'headroom_after' ? 'row-strong' : ''}>
                    <th scope="row">{t(k)}</th>
                    <td class={v.vcpus < 0 ? 'neg' : ''}>{v.vcpus}</td>
                    <td class={v.memory_mib < 0 ? 'neg' : ''}>{mib(v.memory_mib)}</td>
                    <td class={v.disk_gib < 0 ? 'neg' : ''}>{v.disk_gib} GiB</td>
                    <td class={v.instances < 0 ? 'neg' : ''}>{v.instances}</td>
                </tr>
            ))}
        </Table>
    );
}

function Timeline({ req }) {
    const items = [
        ...(req.history || []).map((h) => ({ at: h.at, h })),
        ...(req.opinions || []).map((o) => ({ at: o.at, o })),
    ].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    return (
        <ol class="timeline">
            {items.map((x) => (x.h ? (
                <li class="tl-move">
                    <Time iso={x.h.at} />
                    <span class="tl-what">
                        {x.h.from ? <><Badge prefix="rs" value={x.h.from} /> → </> : null}<Badge prefix="rs" value={x.h.to} />
                    </span>
                    <span class="tl-who">{x.h.account || t(`role_${x.h.role}`)}</span>
                    {x.h.comment ? <p class="tl-comment">{x.h.comment}</p> : null}
                </li>
            ) : (
                <li class="tl-opinion">
                    <Time iso={x.o.at} />
                    <span class="tl-what">{t('opinion')}: <strong>{tv('rec', x.o.recommendation)}</strong></span>
                    <span class="tl-who">{t('by_role', { a: x.o.account, r: t(`role_${x.o.role}`) })}</span>
                    {x.o.comment ? <p class="tl-comment">{x.o.comment}</p> : null}
                </li>
            )))}
        </ol>
    );
}

function OpinionForm({ req, onDone }) {
    const [rec, setRec] = useState('approve');
    const [comment, setComment] = useState('');
    return (
        <Form submit={t('add_opinion')} label={t('add_opinion')} class="form-inline"
            onSubmit={async () => {
                const d = await post(`requests/${req.id}/opinions`, { recommendation: rec, comment });
                setComment('');
                onDone(d);
            }}>
            <Field label={t('recommendation')}>
                <EnumSelect prefix="rec" values={['approve', 'return', 'reject']} value={rec} onChange={setRec} />
            </Field>
            <Field label={t('comment')} wide>
                <textarea rows="3" required value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
            </Field>
        </Form>
    );
}

function DecisionForm({ req, onDone }) {
    const [dec, setDec] = useState('approve');
    const [comment, setComment] = useState('');
    return (
        <Form submit={t('decide')} label={t('decision')} class="form-inline"
            onSubmit={async () => {
                const body = { decision: dec };
                if (comment) body.comment = comment;
                onDone(await post(`requests/${req.id}/decision`, body));
            }}>
            <Field label={t('decision')}>
                <EnumSelect prefix="rec" values={['approve', 'return', 'reject']} value={dec} onChange={setDec} />
            </Field>
            <Field label={t('comment')} hint={t('decision_comment_needed')} wide>
                <textarea rows="3" required={dec !== 'approve'} value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
            </Field>
        </Form>
    );
}

function AssignForm({ req, onDone }) {
    const cons = useLoad(() => get_all('accounts', { role: 'consultant' }), []);
    const [c, setC] = useState('');
    return (
        <Loaded r={cons}>{(list) => (
            <Form submit={t('assign')} label={t('assign_consultant')} class="form-inline"
                onSubmit={async () => onDone(await post(`requests/${req.id}/assign`, { consultant: Number(c || (list[0] && list[0].id)) }))}>
                <Field label={t('consultant')}>
                    <select value={c || (list[0] && list[0].id)} required onChange={(e) => setC(e.currentTarget.value)}>
                        {list.filter((a) => !a.disabled).map((a) => <option value={a.id}>{a.name}</option>)}
                    </select>
                </Field>
            </Form>
        )}</Loaded>
    );
}

function TrialForm({ req, onDone }) {
    const done = new Set(((req.trial && req.trial.results) || []).map((r) => r.test));
    const left = TESTS.filter((x) => !done.has(x));
    const [test, setTest] = useState(left[0] || 'function');
    const [result, setResult] = useState('pass');
    const [comment, setComment] = useState('');
    const report = (req.materials || []).find((m) => m.kind === 'test_report');
    useEffect(() => {
        if (!left.includes(test) && left.length) setTest(left[0]);
    }, [left.join()]);
    return (
        <div>
            <p>
                <Uploader req={req} kind="test_report" onDone={() => onDone()} label={t('test_report_upload')} />
            </p>
            {!report ? <p class="hint">{t('test_report_needed')}</p> : null}
            {left.length ? (
                <Form submit={t('record_trial_result')} label={t('record_trial_result')} class="form-inline"
                    onSubmit={async () => {
                        const body = { test, result, report: report ? report.sha256 : '' };
                        if (comment) body.comment = comment;
                        const d = await post(`requests/${req.id}/trial-results`, body);
                        setComment('');
                        onDone(d);
                    }}>
                    <Field label={t('test')}>
                        <EnumSelect prefix="test" values={left} value={test} onChange={setTest} />
                    </Field>
                    <Field label={t('result')}>
                        <EnumSelect prefix="result" values={['pass', 'fail']} value={result} onChange={setResult} />
                    </Field>
                    <Field label={t('comment')} wide>
                        <input value={comment} maxLength={4000} onInput={(e) => setComment(e.currentTarget.value)} />
                    </Field>
                </Form>
            ) : null}
        </div>
    );
}

function DeptActions({ req, onDone }) {
    const [comment, setComment] = useState('');
    const can_submit = req.state === 'draft' || req.state === 'returned';
    return (
        <div class="actions-box">
            {can_submit ? (
                <>
                    <Link to={`/requests/${req.id}/edit`} class="btn-link">{t('edit_request')}</Link>
                    <Field label={t('comment')} wide>
                        <input value={comment} maxLength={4000} onInput={(e) => setComment(e.currentTarget.value)} />
                    </Field>
                    <Action kind="primary" onRun={async () => onDone(await post(`requests/${req.id}/${req.state === 'returned' ? 'resubmit' : 'submit'}`, comment ? { comment } : {}))}>
                        {req.state === 'returned' ? t('resubmit') : t('submit')}
                    </Action>
                </>
            ) : null}
            {['draft', 'submitted', 'returned'].includes(req.state) ? (
                <Action onRun={async () => onDone(await post(`requests/${req.id}/withdraw`, comment ? { comment } : {}))}
                    confirm_text={t('withdraw')}>{t('withdraw')}</Action>
            ) : null}
        </div>
    );
}

export function RequestPage({ id, role }) {
    const r = useLoad(async () => {
        const [req, pol] = await Promise.all([get(`requests/${id}`), get('policies')]);
        return { req, pol };
    }, [id]);
    const [doc, setDoc] = useState(null);
    useEffect(() => setDoc(null), [r.data]);
    const d = r.data ? { ...r.data, req: doc || r.data.req } : undefined;
    const refresh = (x) => (x && x.id === id && x.state ? setDoc(x) : r.reload());
    const busy = d && (['approved', 'applying', 'reclaiming'].includes(d.req.state) ||
        (d.req.jobs || []).some((j) => j.state === 'queued' || j.state === 'running'));
    usePoll(() => get(`requests/${id}`).then(setDoc, () => {}), 3000, !!busy);
    return (
        <Page title={t('request_n', { n: id })} wide>
            {r.error ? <Err error={r.error} /> : !d ? <Loading /> : <RequestBody d={d} role={role} refresh={refresh} />}
        </Page>
    );
}

function RequestBody({ d, role, refresh }) {
    const req = d.req;
    const rules = Object.fromEntries(((req.check && req.check.rules) || []).map((x) => [x.rule, x]));
    const from_finding = (req.history || []).map((h) => /finding (\d+)/.exec(h.comment || '')).find(Boolean);
    const show_check = req.check && ['draft', 'returned', 'submitted'].includes(req.state);
    return (
        <div class="request" data-state={req.state}>
            <div class="request-head">
                <Badge prefix="rs" value={req.state} />
                <span class="req-title">{tv('kind', req.kind)} · {req.system ? req.system.name : ''}</span>
            </div>
            <Facts rows={[
                [t('system'), <Name type="system" id={req.system_id} name={req.system && req.system.name} to={role === 'department' || role === 'reviewer' ? `/systems/${req.system_id}` : undefined} />],
                [t('department'), req.department ? req.department.name : <Name type="department" id={req.department_id} />],
                [t('kind'), tv('kind', req.kind)],
                [t('state'), <Badge prefix="rs" value={req.state} />],
                req.consultant_id && (req.consultant_name || role === 'reviewer' || role === 'auditor') ? [t('consultant'), <Name type="account" id={req.consultant_id} name={req.consultant_name} />] : null,
                req.allocation_id ? [t('allocation'), <Link to={`/allocations/${req.allocation_id}`}>{t('allocation_n', { n: req.allocation_id })}</Link>] : null,
                from_finding ? [t('finding'), <Link to={`/findings/${from_finding[1]}`}>{t('from_finding', { n: from_finding[1] })}</Link>] : null,
                [t('created_at'), <Time iso={req.created_at} />],
                [t('updated_at'), <Time iso={req.updated_at} />],
            ]} />
            {req.resources ? (
                <Section title={t('instances')}>
                    <Table caption={t('instances')} head={['#', t('vcpus'), t('memory'), t('disk'), t('image')]}>
                        {req.resources.instances.map((x, i) => (
                            <tr><td>{i + 1}</td><td>{x.vcpus}</td><td>{mib(x.memory_mib)}</td><td>{x.disk_gib} GiB</td><td>{x.image}</td></tr>
                        ))}
                        <tr class="row-strong"><th scope="row">{t('total')}</th><td>{req.totals.vcpus}</td><td>{mib(req.totals.memory_mib)}</td><td>{req.totals.disk_gib} GiB</td><td>{req.totals.instances} ×</td></tr>
                    </Table>
                    {req.kind === 'change' ? <p>{t('restart_allowed')}: {req.restart_allowed ? t('yes') : t('no')}</p> : null}
                </Section>
            ) : null}
            <Section title={t('justification')}>
                <p class="prose" data-testid="justification">{req.justification}</p>
            </Section>
            <Materials req={req} pol={d.pol} role={role} onChange={() => refresh()} />
            {show_check ? (
                <Section title={t('precheck')}>
                    <CheckRules check={req.check} />
                    {role !== 'department' || req.state !== 'submitted' ? <Quota rule={rules.quota_headroom} /> : null}
                    {rules.open_findings && rules.open_findings.findings && rules.open_findings.findings.length ? (
                        <Table caption={t('open_findings_of_dept')} head={[t('finding'), t('kind'), t('instance'), t('frees'), t('evidence')]}>
                            {rules.open_findings.findings.map((f) => (
                                <tr>
                                    <td><Link to={`/findings/${f.id}`}>{t('finding_n', { n: f.id })}</Link></td>
                                    <td>{tv('fk', f.kind)}</td>
                                    <td>{f.instance || t('dash')}</td>
                                    <td>{`${f.frees_vcpus} vCPU / ${mib(f.frees_memory_mib)}`}</td>
                                    <td>{f.rule}</td>
                                </tr>
                            ))}
                        </Table>
                    ) : null}
                </Section>
            ) : null}
            {role === 'department' ? <DeptActions req={req} onDone={refresh} /> : null}
            {role === 'reviewer' && req.state === 'submitted' ? (
                <Section title={t('decision')}>
                    {req.consultant_id ? <p>{t('assigned_to', { n: '' })}<Name type="account" id={req.consultant_id} name={req.consultant_name} /></p> : null}
                    <h3>{t('assign_consultant')}</h3>
                    <AssignForm req={req} onDone={refresh} />
                    <h3>{t('add_opinion')}</h3>
                    <OpinionForm req={req} onDone={refresh} />
                    <h3>{t('decision')}</h3>
                    <DecisionForm req={req} onDone={refresh} />
                </Section>
            ) : null}
            {role === 'consultant' && req.state === 'submitted' ? (
                <Section title={t('add_opinion')}><OpinionForm req={req} onDone={refresh} /></Section>
            ) : null}
            {role === 'reviewer' && req.state === 'trial_passed' && !req.allocation_id ? (
                <Section title={t('allocate')}>
                    <p>{t('allocate_note')}</p>
                    <Action kind="primary" onRun={async () => refresh(await post(`requests/${req.id}/allocate`, {}))}>{t('allocate')}</Action>
                </Section>
            ) : null}
            {req.kind === 'new' && req.trial && (req.trial.allocation_id || (req.trial.results || []).length) ? (
                <Section title={t('trial')}>
                    {req.trial.deadline ? <p>{t('trial_deadline', { t: '' })}<Time iso={req.trial.deadline} /></p> : null}
                    <Table caption={t('trial_results')} count={(req.trial.results || []).length}
                        head={[t('test'), t('result'), t('comment'), t('time')]}>
                        {(req.trial.results || []).map((x) => (
                            <tr data-test={x.test}><td>{tv('test', x.test)}</td><td><span class={`mark mark-${x.result === 'pass' ? 'ok' : 'fail'}`}>{tv('result', x.result)}</span></td><td>{x.comment || t('dash')}</td><td><Time iso={x.at} /></td></tr>
                        ))}
                    </Table>
                    {role === 'vendor' && req.state === 'in_trial' ? <TrialForm req={req} onDone={refresh} /> : null}
                </Section>
            ) : null}
            <Section title={t('timeline')}>
                <Timeline req={req} />
            </Section>
            {(req.jobs || []).length ? (
                <Section title={t('jobs')}>
                    <ul class="plain">
                        {req.jobs.map((j) => (
                            <li>
                                {role === 'consultant' ? t('job_n', { n: j.id }) : <Link to={`/jobs/${j.id}`}>{t('job_n', { n: j.id })}</Link>}{' '}
                                {tv('jk', j.kind)} <Badge prefix="js" value={j.state} /> {j.error ? <span class="error-text">{j.error}</span> : null}
                            </li>
                        ))}
                    </ul>
                </Section>
            ) : null}
        </div>
    );
}

export { Uploader };
