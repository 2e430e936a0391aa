// SPDX-License-Identifier: Apache-2.0
// A department's own objects (also read by the bureau, the vendor and the auditor): systems,
// allocations with per-instance usage charts, findings, security and backup records.
import { useState } from 'preact/hooks';
import { get, get_all, patch, post, q } from '../api.js';
import { t, tv } from '../i18n.js';
import { bytes, local_time, mib, num, pct } from '../fmt.js';
import { navigate } from '../router.js';
import { Chart } from '../charts.jsx';
import {
    Action, Badge, EnumSelect, Err, Facts, Field, Form, Link, Loaded, Loading, Name, Notice, Page, Pager,
    Resources, Section, Table, Time, useLoad, usePaged,
} from '../ui.jsx';

const CATEGORIES = ['office_automation', 'management_information', 'integration', 'website', 'data_service', 'other'];
const SYSTEM_STATUS = ['planned', 'in_service', 'retired'];
const ALLOCATION_STATES = ['provisioning', 'active', 'resizing', 'reclaiming', 'retained', 'purged', 'error'];

// ---- systems

export function Systems({ role }) {
    const p = usePaged('systems', {});
    return (
        <Page title={t('systems')} actions={role === 'department' || role === 'reviewer' ? <Link to="/systems/new" class="btn-link btn-primary">{t('new_system')}</Link> : null}>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('systems')} count={p.items.length}
                    head={[t('name'), ...(role !== 'department' ? [t('department')] : []), t('category'), t('protection_level'), t('system_status'), t('on_cloud'), t('updated_at')]}>
                    {p.items.map((s) => (
                        <tr>
                            <td><Link to={`/systems/${s.id}`}>{s.name}</Link></td>
                            {role !== 'department' ? <td><Name type="department" id={s.department_id} name={s.department_name} /></td> : null}
                            <td>{tv('cat', s.category)}</td>
                            <td>{t('level_n', { n: s.protection_level })}</td>
                            <td>{tv('ss', s.status)}</td>
                            <td>{s.on_cloud ? t('yes') : t('no')}</td>
                            <td><Time iso={s.updated_at} /></td>
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
        </Page>
    );
}

export function SystemEdit({ id, role }) {
    const r = useLoad(async () => ({
        sys: id ? await get(`systems/${id}`) : null,
        depts: role === 'reviewer' && !id ? await get_all('departments') : [],
    }), [id]);
    return (
        <Page title={id ? t('edit_system') : t('new_system')}>
            <Loaded r={r}>{(d) => <SystemForm d={d} id={id} role={role} />}</Loaded>
            {id ? <SystemRecords id={id} role={role} /> : null}
        </Page>
    );
}

function SystemForm({ d, id, role }) {
    const s = d.sys || {};
    const [name, setName] = useState(s.name || '');
    const [desc, setDesc] = useState(s.description || '');
    const [cat, setCat] = useState(s.category || 'management_information');
    const [lvl, setLvl] = useState(s.protection_level || 2);
    const [status, setStatus] = useState(s.status || 'in_service');
    const [dept, setDept] = useState((d.depts[0] && d.depts[0].id) || '');
    const can_edit = role === 'department' || role === 'reviewer';
    if (!can_edit) {
        return <Facts rows={[[t('name'), s.name], [t('department'), <Name type="department" id={s.department_id} name={s.department_name} />], [t('category'), tv('cat', s.category)], [t('protection_level'), t('level_n', { n: s.protection_level })], [t('system_status'), tv('ss', s.status)], [t('on_cloud'), s.on_cloud ? t('yes') : t('no')], [t('description'), s.description]]} />;
    }
    return (
        <Form submit={t('save')} label={t('new_system')} done={t('system_saved')}
            onSubmit={async () => {
                const body = { name, description: desc, category: cat, protection_level: Number(lvl), status };
                if (id) return patch(`systems/${id}`, body);
                if (role === 'reviewer') body.department_id = Number(dept);
                const x = await post('systems', body);
                navigate(`/systems/${x.id}`);
                return x;
            }}>
            {role === 'reviewer' && !id ? (
                <Field label={t('department')}>
                    <select value={dept} required onChange={(e) => setDept(e.currentTarget.value)}>
                        {d.depts.map((x) => <option value={x.id}>{x.name}</option>)}
                    </select>
                </Field>
            ) : null}
            <Field label={t('name')}>
                <input required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
            </Field>
            <Field label={t('category')}>
                <EnumSelect prefix="cat" values={CATEGORIES} value={cat} onChange={setCat} />
            </Field>
            <Field label={t('protection_level')}>
                <select value={lvl} onChange={(e) => setLvl(e.currentTarget.value)}>
                    {[1, 2, 3, 4, 5].map((n) => <option value={n}>{t('level_n', { n })}</option>)}
                </select>
            </Field>
            <Field label={t('system_status')}>
                <EnumSelect prefix="ss" values={SYSTEM_STATUS} value={status} onChange={setStatus} />
            </Field>
            <Field label={t('description')} wide>
                <textarea rows="3" maxLength={4000} value={desc} onInput={(e) => setDesc(e.currentTarget.value)} />
            </Field>
        </Form>
    );
}

function SystemRecords({ id, role }) {
    return (
        <>
            <Section title={t('nav_requests')}>
                <SystemRequests id={id} />
            </Section>
            <SecurityRecords system={id} role={role} />
        </>
    );
}

function SystemRequests({ id }) {
    const p = usePaged('requests', { system: id });
    return p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
        <>
            <Table caption={t('nav_requests')} count={p.items.length} head={[t('request'), t('kind'), t('state'), t('totals'), t('updated_at')]}>
                {p.items.map((r) => (
                    <tr>
                        <td><Link to={`/requests/${r.id}`}>{t('request_n', { n: r.id })}</Link></td>
                        <td>{tv('kind', r.kind)}</td>
                        <td><Badge prefix="rs" value={r.state} /></td>
                        <td><Resources r={r.totals} /></td>
                        <td><Time iso={r.updated_at} /></td>
                    </tr>
                ))}
            </Table>
            <Pager p={p} />
        </>
    );
}

// ---- allocations

export function Allocations({ role, query }) {
    const [state, setState] = useState(query.state || '');
    const [purpose, setPurpose] = useState(query.purpose || (role === 'department' ? 'production' : ''));
    const p = usePaged('allocations', { state, purpose });
    return (
        <Page title={t('nav_allocations')}>
            <div class="filters">
                <Field label={t('state')}>
                    <EnumSelect prefix="as" values={ALLOCATION_STATES} value={state} onChange={setState} any />
                </Field>
                <Field label={t('purpose')}>
                    <EnumSelect prefix="purpose" values={['production', 'trial']} value={purpose} onChange={setPurpose} any />
                </Field>
            </div>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('nav_allocations')} count={p.items.length}
                    head={[t('allocation'), ...(role !== 'department' ? [t('department')] : []), t('system'), t('purpose'), t('state'), t('totals'), t('updated_at')]}>
                    {p.items.map((a) => (
                        <tr>
                            <td><Link to={`/allocations/${a.id}`}>{t('allocation_n', { n: a.id })}</Link></td>
                            {role !== 'department' ? <td><Name type="department" id={a.department_id} name={a.department_name} /></td> : null}
                            <td><Name type="system" id={a.system_id} name={a.system_name} /></td>
                            <td>{tv('purpose', a.purpose)}</td>
                            <td><Badge prefix="as" value={a.state} /></td>
                            <td><Resources r={a.totals} /> · {a.totals.instances} ×</td>
                            <td><Time iso={a.updated_at} /></td>
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
        </Page>
    );
}

const RANGES = {
    day: { seconds: 86400, step: 300 },
    week: { seconds: 7 * 86400, step: 3600 },
    month: { seconds: 30 * 86400, step: 21600 },
    year: { seconds: 365 * 86400, step: 7 * 86400 },
};

export function AllocationPage({ id, role }) {
    const r = useLoad(async () => {
        const a = await get(`allocations/${id}`);
        const to = new Date();
        const from = new Date(to.getTime() - 86400000);
        const u = await get(`allocations/${id}/usage${q({ from: from.toISOString().slice(0, 19) + 'Z', to: to.toISOString().slice(0, 19) + 'Z' })}`).catch(() => null);
        return { a, u };
    }, [id]);
    return (
        <Page title={t('allocation_n', { n: id })} wide>
            <Loaded r={r}>{(d) => <AllocationBody d={d} role={role} />}</Loaded>
        </Page>
    );
}

function AllocationBody({ d, role }) {
    const a = d.a;
    const live = a.instances.filter((i) => i.state !== 'deleted');
    const [inst, setInst] = useState(live[0] ? live[0].id : a.instances[0] && a.instances[0].id);
    const usage = d.u ? Object.fromEntries(d.u.instances.map((x) => [x.instance_id, x])) : {};
    return (
        <div class="allocation" data-state={a.state}>
            <Facts rows={[
                [t('system'), <Name type="system" id={a.system_id} name={a.system_name} />],
                [t('department'), <Name type="department" id={a.department_id} name={a.department_name} />],
                [t('purpose'), tv('purpose', a.purpose)],
                [t('state'), <Badge prefix="as" value={a.state} />],
                [t('totals'), <><Resources r={a.totals} /> · {a.totals.instances} ×</>],
                a.request_id ? [t('request'), <Link to={`/requests/${a.request_id}`}>{t('request_n', { n: a.request_id })}</Link>] : null,
                a.retained_until ? [t('retained_until'), <Time iso={a.retained_until} />] : null,
                a.error ? [t('as_error'), a.error] : null,
                [t('created_at'), <Time iso={a.created_at} />],
            ]} />
            {role === 'department' && a.state === 'active' && a.purpose === 'production' ? (
                <p class="button-row">
                    <Link class="btn-link" to={`/requests/new?kind=change&system=${a.system_id}&allocation=${a.id}`}>{t('change_this')}</Link>
                    <Link class="btn-link" to={`/requests/new?kind=termination&system=${a.system_id}&allocation=${a.id}`}>{t('terminate_this')}</Link>
                </p>
            ) : null}
            <Section title={t('instances')}>
                <Table caption={`${t('instances')} · ${t('usage_summary')}`} count={a.instances.length}
                    head={[t('instance'), t('host'), t('size'), t('state'), t('live_state'), `${t('cpu_util')} (${t('avg')} / ${t('p95')})`, `${t('memory')} (${t('avg')})`, t('coverage')]}>
                    {a.instances.map((i) => {
                        const u = usage[i.id];
                        return (
                            <tr data-instance={i.name}>
                                <td>{i.name}</td>
                                <td>{i.host ? i.host.name : t('dash')}</td>
                                <td>{`${i.vcpus} vCPU · ${mib(i.memory_mib)} · ${i.disk_gib} GiB`}</td>
                                <td><Badge prefix="is" value={i.state} /></td>
                                <td>{i.live_state ? <Badge prefix="is" value={i.live_state} /> : t('dash')}</td>
                                <td>{u && u.cpu_cores_avg !== null ? `${pct(u.cpu_cores_avg / (u.vcpus || i.vcpus))} / ${pct(u.cpu_cores_p95 / (u.vcpus || i.vcpus))}` : t('dash')}</td>
                                <td>{u && u.memory_used_mib_avg !== null ? mib(u.memory_used_mib_avg) : t('dash')}</td>
                                <td>{u ? pct(u.coverage) : t('dash')}</td>
                            </tr>
                        );
                    })}
                </Table>
            </Section>
            {a.instances.length ? (
                <Section title={t('usage')}>
                    <Field label={t('instance')}>
                        <select value={inst} onChange={(e) => setInst(Number(e.currentTarget.value))}>
                            {a.instances.map((i) => <option value={i.id}>{i.name}</option>)}
                        </select>
                    </Field>
                    <InstanceUsage id={inst} name={(a.instances.find((i) => i.id === inst) || {}).name} />
                </Section>
            ) : null}
        </div>
    );
}

function iso_s(d) {
    return `${d.toISOString().slice(0, 19)}Z`;
}

export function InstanceUsage({ id, name }) {
    const [range, setRange] = useState('day');
    const R = RANGES[range];
    const r = useLoad(() => {
        const to = new Date();
        const from = new Date(to.getTime() - R.seconds * 1000);
        return get(`instances/${id}/usage${q({ from: iso_s(from), to: iso_s(to), step: R.step })}`);
    }, [id, range]);
    return (
        <div class="usage" data-instance-id={id}>
            <div class="segmented" role="group" aria-label={t('range_label')}>
                {Object.keys(RANGES).map((k) => (
                    <button type="button" aria-pressed={k === range ? 'true' : 'false'} onClick={() => setRange(k)}>{t(`range_${k}`)}</button>
                ))}
            </div>
            <Loaded r={r}>{(u) => <UsageCharts u={u} name={name} range={range} />}</Loaded>
        </div>
    );
}

function UsageCharts({ u, name, range }) {
    const pts = u.points || [];
    if (!pts.length) return <p class="empty" data-testid="no-usage">{t('no_usage')}</p>;
    const step = u.step;
    const x = pts.map((p) => local_time(typeof p.start === 'number' ? new Date(p.start * 1000).toISOString() : p.start, range !== 'year'));
    const p100 = (v) => (v === null || v === undefined ? null : Math.round(v * 1000) / 10);
    const rate = (v) => (v === null || v === undefined ? null : Math.round(v / step));
    const axis = (fmt) => ({ type: 'value', minInterval: 1, axisLabel: { formatter: fmt } });
    const base = (series, yfmt, ymax) => ({
        grid: { left: 56, right: 16, top: 36, bottom: 28 },
        tooltip: { trigger: 'axis' },
        legend: { top: 0 },
        xAxis: { type: 'category', data: x, axisLabel: { hideOverlap: true } },
        yAxis: { ...axis(yfmt), max: ymax },
        series: series.map((s) => ({ type: 'line', showSymbol: pts.length < 40, connectNulls: false, ...s })),
    });
    const cov = { name: t('coverage'), data: pts.map((p) => p100(p.coverage)), lineStyle: { type: 'dashed', width: 1 }, itemStyle: { color: '#6b6b6b' } };
    const charts = [
        [t('cpu_util'), base([{ name: t('cpu_util'), data: pts.map((p) => p100(p.cpu_utilization_avg)), areaStyle: { opacity: 0.15 } }, cov], '{value}%', 100)],
        [t('mem_util'), base([{ name: t('mem_util'), data: pts.map((p) => p100(p.memory_utilization_avg)), areaStyle: { opacity: 0.15 } }, cov], '{value}%', 100)],
        [t('disk_io'), base([{ name: t('disk_read'), data: pts.map((p) => rate(p.disk_read_bytes)) }, { name: t('disk_write'), data: pts.map((p) => rate(p.disk_write_bytes)) }], (v) => `${bytes(v)}/s`)],
        [t('net_io'), base([{ name: t('net_rx'), data: pts.map((p) => rate(p.net_rx_bytes)) }, { name: t('net_tx'), data: pts.map((p) => rate(p.net_tx_bytes)) }], (v) => `${bytes(v)}/s`)],
    ];
    const avg = (f) => {
        const v = pts.map(f).filter((z) => z !== null && z !== undefined);
        return v.length ? v.reduce((s, z) => s + z, 0) / v.length : null;
    };
    const mx = (f) => {
        const v = pts.map(f).filter((z) => z !== null && z !== undefined);
        return v.length ? Math.max(...v) : null;
    };
    return (
        <div class="usage-charts" data-points={pts.length}>
            <div class="chart-grid">
                {charts.map(([title, opt]) => (
                    <figure class="chart-box">
                        <figcaption>{title}</figcaption>
                        <Chart option={opt} label={t('chart_alt', { m: `${name} ${title}` })} />
                    </figure>
                ))}
            </div>
            <Table caption={t('usage_of', { n: name })} head={[t('metric'), t('avg'), t('max')]}>
                <tr><th scope="row">{t('cpu_util')}</th><td>{pct(avg((p) => p.cpu_utilization_avg))}</td><td>{pct(mx((p) => p.cpu_utilization_avg))}</td></tr>
                <tr><th scope="row">{t('mem_util')}</th><td>{pct(avg((p) => p.memory_utilization_avg))}</td><td>{pct(mx((p) => p.memory_utilization_avg))}</td></tr>
                <tr><th scope="row">{t('disk_io')}</th><td>{`${bytes(avg((p) => (p.disk_read_bytes || 0) + (p.disk_write_bytes || 0)) / step)}/s`}</td><td>{`${bytes(mx((p) => (p.disk_read_bytes || 0) + (p.disk_write_bytes || 0)) / step)}/s`}</td></tr>
                <tr><th scope="row">{t('net_io')}</th><td>{`${bytes(avg((p) => (p.net_rx_bytes || 0) + (p.net_tx_bytes || 0)) / step)}/s`}</td><td>{`${bytes(mx((p) => (p.net_rx_bytes || 0) + (p.net_tx_bytes || 0)) / step)}/s`}</td></tr>
                <tr><th scope="row">{t('coverage')}</th><td data-testid="coverage">{pct(avg((p) => p.coverage))}</td><td>{pct(mx((p) => p.coverage))}</td></tr>
            </Table>
        </div>
    );
}

// ---- findings

export function Findings({ role, query }) {
    const [state, setState] = useState(query.state || 'live');
    const [kind, setKind] = useState(query.kind || '');
    const p = usePaged('findings', { state, kind });
    return (
        <Page title={t('nav_findings')}>
            <div class="filters">
                <Field label={t('state')}>
                    <EnumSelect prefix="fs" values={['live', 'open', 'acknowledged', 'resolved', 'dismissed']} value={state} onChange={setState} any />
                </Field>
                <Field label={t('kind')}>
                    <EnumSelect prefix="fk" values={['idle', 'over_provisioned', 'under_provisioned']} value={kind} onChange={setKind} any />
                </Field>
            </div>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('nav_findings')} count={p.items.length}
                    head={[t('finding'), ...(role !== 'department' ? [t('department')] : []), t('system'), t('instance'), t('kind'), t('state'), t('recommended'), t('frees'), t('last_found')]}>
                    {p.items.map((f) => (
                        <tr>
                            <td><Link to={`/findings/${f.id}`}>{t('finding_n', { n: f.id })}</Link></td>
                            {role !== 'department' ? <td><Name type="department" id={f.department_id} name={f.department_name} /></td> : null}
                            <td><Name type="system" id={f.system_id} name={f.system_name} /></td>
                            <td>{f.instance}</td>
                            <td>{tv('fk', f.kind)}</td>
                            <td><Badge prefix="fs" value={f.state} /></td>
                            <td>{rec_text(f)}</td>
                            <td>{f.frees ? `${f.frees.vcpus} vCPU / ${mib(f.frees.memory_mib)}` : t('dash')}</td>
                            <td><Time iso={f.last_found} /></td>
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
        </Page>
    );
}

function rec_text(f) {
    if (f.kind === 'idle') return t('reclaim');
    const r = f.recommendation && f.recommendation.recommended;
    return r ? `${r.vcpus} vCPU / ${mib(r.memory_mib)}` : t('dash');
}

export function FindingPage({ id, role }) {
    const r = useLoad(() => get(`findings/${id}`), [id]);
    const [made, setMade] = useState(null);
    const [reason, setReason] = useState('');
    return (
        <Page title={t('finding_n', { n: id })} wide>
            <Loaded r={r}>{(f) => {
                const ev = f.evidence || {};
                const cur = f.recommendation && f.recommendation.current;
                const rec = f.recommendation && f.recommendation.recommended;
                const live = f.state === 'open' || f.state === 'acknowledged';
                return (
                    <div class="finding" data-state={f.state}>
                        <Facts rows={[
                            [t('kind'), tv('fk', f.kind)],
                            [t('state'), <Badge prefix="fs" value={f.state} />],
                            [t('system'), <Name type="system" id={f.system_id} name={f.system_name} />],
                            [t('department'), <Name type="department" id={f.department_id} name={f.department_name} />],
                            [t('instance'), f.instance],
                            [t('allocation'), <Link to={`/allocations/${f.allocation_id}`}>{t('allocation_n', { n: f.allocation_id })}</Link>],
                            [t('rule'), f.rule],
                            [t('current'), cur ? `${cur.vcpus} vCPU / ${mib(cur.memory_mib)}` : t('dash')],
                            [t('recommended'), rec_text(f)],
                            [t('frees'), f.frees ? `${f.frees.vcpus} vCPU / ${mib(f.frees.memory_mib)}` : t('dash')],
                            [t('first_found'), <Time iso={f.first_found} />],
                            [t('last_found'), <Time iso={f.last_found} />],
                            f.reason ? [t('reason'), f.reason] : null,
                        ]} />
                        <Section title={t('evidence')}>
                            <Facts rows={[
                                ev.window ? [t('window'), <><Time iso={ev.window.from} /> – <Time iso={ev.window.to} /></>] : null,
                                [t('coverage'), pct(ev.coverage)],
                                ev.cpu ? [t('cpu_util'), `${t('avg')} ${num(ev.cpu.avg_cores)} · ${t('p95')} ${num(ev.cpu.p95_cores)} · ${t('max')} ${num(ev.cpu.max_cores)} vCPU (${t('p95')} ${pct(ev.cpu.p95_utilization)})`] : null,
                                ev.memory && ev.memory.p95_mib !== undefined ? [t('memory'), `${t('avg')} ${mib(ev.memory.avg_mib)} · ${t('p95')} ${mib(ev.memory.p95_mib)} · ${t('max')} ${mib(ev.memory.max_mib)}`] : null,
                                ev.network ? [t('network'), `${t('net_rx')} ${bytes(ev.network.rx_bytes_per_second)}/s · ${t('net_tx')} ${bytes(ev.network.tx_bytes_per_second)}/s`] : null,
                            ]} />
                            <details>
                                <summary>JSON</summary>
                                <pre class="json">{JSON.stringify(ev, null, 2)}</pre>
                            </details>
                        </Section>
                        {f.change_request_id ? (
                            <p><Link to={`/requests/${f.change_request_id}`}>{t('see_change_request', { n: f.change_request_id })}</Link></p>
                        ) : null}
                        {made ? <Notice>{t('change_request_made', { n: made })} <Link to={`/requests/${made}`}>{t('request_n', { n: made })}</Link></Notice> : null}
                        {live ? (
                            <div class="actions-box">
                                {role === 'department' && !f.change_request_id && !made ? (
                                    <Action kind="primary" onRun={async () => {
                                        const x = await post(`findings/${f.id}/change-request`, {});
                                        setMade(x.request_id);
                                        navigate(`/requests/${x.request_id}`);
                                    }}>{t('make_change_request')}</Action>
                                ) : null}
                                {(role === 'department' || role === 'reviewer') ? (
                                    <Field label={t('reason')} wide>
                                        <input value={reason} maxLength={4000} onInput={(e) => setReason(e.currentTarget.value)} />
                                    </Field>
                                ) : null}
                                {(role === 'department' || role === 'reviewer') && f.state === 'open' ? (
                                    <Action onRun={async () => {
                                        await post(`findings/${f.id}/acknowledge`, reason ? { reason } : {});
                                        r.reload();
                                    }}>{t('acknowledge')}</Action>
                                ) : null}
                                {(role === 'department' || role === 'reviewer') ? (
                                    <Action onRun={async () => {
                                        await post(`findings/${f.id}/resolve`, reason ? { reason } : {});
                                        r.reload();
                                    }}>{t('resolve')}</Action>
                                ) : null}
                                {role === 'reviewer' ? (
                                    <Action onRun={async () => {
                                        await post(`findings/${f.id}/dismiss`, { reason });
                                        r.reload();
                                    }}>{t('dismiss')}</Action>
                                ) : null}
                            </div>
                        ) : null}
                    </div>
                );
            }}</Loaded>
        </Page>
    );
}

// ---- security and backup records

export function Security({ role, query }) {
    const systems = useLoad(() => get_all('systems', {}, 5000), []);
    const [sys, setSys] = useState(query.system ? Number(query.system) : null);
    return (
        <Page title={t('nav_security')}>
            <Loaded r={systems}>{(list) => {
                const cur = sys || (list[0] && list[0].id);
                if (!list.length) return <p class="empty">{t('empty_list')}</p>;
                return (
                    <>
                        <Field label={t('choose_system')}>
                            <select value={cur} onChange={(e) => setSys(Number(e.currentTarget.value))}>
                                {list.map((s) => <option value={s.id}>{s.name}</option>)}
                            </select>
                        </Field>
                        <SecurityRecords system={cur} role={role} key={cur} />
                    </>
                );
            }}</Loaded>
        </Page>
    );
}

const SEVERITIES = ['critical', 'high', 'medium', 'low'];

function SecurityRecords({ system, role }) {
    const can_write = role === 'department' || role === 'vendor';
    const v = usePaged(`systems/${system}/vulnerabilities`, {});
    const inc = usePaged(`systems/${system}/incidents`, {});
    const bk = usePaged(`systems/${system}/backups`, {});
    return (
        <>
            <Section title={t('vulnerabilities')}>
                {v.error ? <Err error={v.error} /> : v.data === undefined ? <Loading /> : (
                    <Table caption={t('vulnerabilities')} count={v.items.length}
                        head={[t('severity'), t('title'), t('state'), t('found_at'), t('fixed_at'), ...(can_write ? [t('actions')] : [])]}>
                        {v.items.map((x) => (
                            <tr>
                                <td><Badge prefix="sev" value={x.severity} /></td>
                                <td>{x.title}</td>
                                <td><Badge prefix="vs" value={x.status} /></td>
                                <td><Time iso={x.found_at} /></td>
                                <td><Time iso={x.fixed_at} /></td>
                                {can_write ? <td>{x.status !== 'fixed' ? <Action onRun={async () => {
                                    await patch(`vulnerabilities/${x.id}`, { status: 'fixed' });
                                    v.reload();
                                }}>{t('mark_fixed')}</Action> : null}</td> : null}
                            </tr>
                        ))}
                    </Table>
                )}
                <Pager p={v} />
                {can_write ? <VulnForm system={system} onDone={v.reload} /> : null}
            </Section>
            <Section title={t('incidents')}>
                {inc.error ? <Err error={inc.error} /> : inc.data === undefined ? <Loading /> : (
                    <Table caption={t('incidents')} count={inc.items.length}
                        head={[t('severity'), t('title'), t('occurred_at'), t('resolved_at'), ...(can_write ? [t('actions')] : [])]}>
                        {inc.items.map((x) => (
                            <tr>
                                <td><Badge prefix="sev" value={x.severity} /></td>
                                <td>{x.title}{x.description ? <p class="hint">{x.description}</p> : null}</td>
                                <td><Time iso={x.occurred_at} /></td>
                                <td><Time iso={x.resolved_at} /></td>
                                {can_write ? <td><Action onRun={async () => {
                                    await patch(`incidents/${x.id}`, { resolved_at: x.resolved_at ? null : new Date().toISOString().slice(0, 19) + 'Z' });
                                    inc.reload();
                                }}>{x.resolved_at ? t('reopen') : t('mark_resolved')}</Action></td> : null}
                            </tr>
                        ))}
                    </Table>
                )}
                <Pager p={inc} />
                {can_write ? <IncidentForm system={system} onDone={inc.reload} /> : null}
            </Section>
            <Section title={t('backups')}>
                {bk.error ? <Err error={bk.error} /> : bk.data === undefined ? <Loading /> : (
                    <Table caption={t('backups')} count={bk.items.length}
                        head={[t('location'), t('taken_at'), t('file_size'), t('sha256')]}>
                        {bk.items.map((x) => (
                            <tr>
                                <td>{x.location}</td>
                                <td><Time iso={x.taken_at} /></td>
                                <td>{bytes(x.size_bytes)}</td>
                                <td><code class="hash">{x.sha256}</code></td>
                            </tr>
                        ))}
                    </Table>
                )}
                <Pager p={bk} />
                {can_write ? <BackupForm system={system} onDone={bk.reload} /> : null}
            </Section>
        </>
    );
}

function now_local_input() {
    return new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

// A datetime-local value (the browser's own zone) as an ISO time with seconds and Z.
function input_to_iso(v) {
    return `${new Date(v).toISOString().slice(0, 19)}Z`;
}

function VulnForm({ system, onDone }) {
    const [sev, setSev] = useState('high');
    const [title, setTitle] = useState('');
    const [found, setFound] = useState(now_local_input());
    return (
        <details class="add">
            <summary>{t('add_vulnerability')}</summary>
            <Form submit={t('add_vulnerability')} label={t('add_vulnerability')} done={t('done')}
                onSubmit={async () => {
                    await post(`systems/${system}/vulnerabilities`, { severity: sev, title, found_at: input_to_iso(found) });
                    setTitle('');
                    onDone();
                }}>
                <Field label={t('severity')}><EnumSelect prefix="sev" values={SEVERITIES} value={sev} onChange={setSev} /></Field>
                <Field label={t('title')} wide><input required maxLength={500} value={title} onInput={(e) => setTitle(e.currentTarget.value)} /></Field>
                <Field label={t('found_at')}><input type="datetime-local" required value={found} onInput={(e) => setFound(e.currentTarget.value)} /></Field>
            </Form>
        </details>
    );
}

function IncidentForm({ system, onDone }) {
    const [sev, setSev] = useState('medium');
    const [title, setTitle] = useState('');
    const [desc, setDesc] = useState('');
    const [at, setAt] = useState(now_local_input());
    return (
        <details class="add">
            <summary>{t('add_incident')}</summary>
            <Form submit={t('add_incident')} label={t('add_incident')} done={t('done')}
                onSubmit={async () => {
                    await post(`systems/${system}/incidents`, { severity: sev, title, description: desc, occurred_at: input_to_iso(at) });
                    setTitle('');
                    setDesc('');
                    onDone();
                }}>
                <Field label={t('severity')}><EnumSelect prefix="sev" values={SEVERITIES} value={sev} onChange={setSev} /></Field>
                <Field label={t('title')} wide><input required maxLength={500} value={title} onInput={(e) => setTitle(e.currentTarget.value)} /></Field>
                <Field label={t('occurred_at')}><input type="datetime-local" required value={at} onInput={(e) => setAt(e.currentTarget.value)} /></Field>
                <Field label={t('description')} wide><textarea rows="3" maxLength={10000} value={desc} onInput={(e) => setDesc(e.currentTarget.value)} /></Field>
            </Form>
        </details>
    );
}

function BackupForm({ system, onDone }) {
    const [loc, setLoc] = useState('');
    const [at, setAt] = useState(now_local_input());
    const [size, setSize] = useState('');
    const [sha, setSha] = useState('');
    return (
        <details class="add">
            <summary>{t('add_backup')}</summary>
            <Form submit={t('add_backup')} label={t('add_backup')} done={t('done')}
                onSubmit={async () => {
                    await post(`systems/${system}/backups`, { location: loc, taken_at: input_to_iso(at), size_bytes: Number(size), sha256: sha.trim().toLowerCase() });
                    setLoc('');
                    setSha('');
                    onDone();
                }}>
                <Field label={t('location')} wide><input required maxLength={1000} value={loc} onInput={(e) => setLoc(e.currentTarget.value)} /></Field>
                <Field label={t('taken_at')}><input type="datetime-local" required value={at} onInput={(e) => setAt(e.currentTarget.value)} /></Field>
                <Field label={t('size_bytes')}><input type="number" min="0" required value={size} onInput={(e) => setSize(e.currentTarget.value)} /></Field>
                <Field label={t('sha256')} wide><input required pattern="[0-9a-fA-F]{64}" value={sha} onInput={(e) => setSha(e.currentTarget.value)} /></Field>
            </Form>
        </details>
    );
}
