// SPDX-License-Identifier: Apache-2.0
// The bureau's dashboard and the vendor's pages: hosts, jobs with live progress, events.
import { useState } from 'preact/hooks';
import { get, get_all, patch, post } from '../api.js';
import { t, tv } from '../i18n.js';
import { age, mib, pct } from '../fmt.js';
import { Chart } from '../charts.jsx';
import {
    Action, Badge, Bar, Check, EnumSelect, Err, Facts, Field, Form, Link, Loaded, Loading, Name, Page, Pager,
    Secret, Section, Table, Time, useLoad, usePaged, usePoll,
} from '../ui.jsx';

// ---- dashboard (reviewer)

function month_of(iso) {
    return iso ? iso.slice(0, 7) : '';
}

function last_months(n) {
    const out = [];
    const d = new Date();
    d.setUTCDate(1);
    for (let i = n - 1; i >= 0; i--) {
        const x = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - i, 1));
        out.push(x.toISOString().slice(0, 7));
    }
    return out;
}

export function Dashboard() {
    const r = useLoad(() => get('dashboard'), []);
    return (
        <Page title={t('dashboard')} wide>
            <Loaded r={r}>{(d) => <DashboardBody d={d} />}</Loaded>
        </Page>
    );
}

function DashboardBody({ d }) {
    const sy = d.systems || {};
    const rq = d.requests || {};
    const al = d.allocations || {};
    const fi = d.findings || {};
    const months = last_months(12);
    const by = Object.fromEntries((d.trends || []).map((x) => [x.month, x]));
    const series = (k) => months.map((m) => (by[m] ? by[m][k] || 0 : 0));
    const trend = {
        grid: { left: 40, right: 40, top: 36, bottom: 28 },
        tooltip: { trigger: 'axis' },
        legend: { top: 0 },
        xAxis: { type: 'category', data: months },
        yAxis: [{ type: 'value', minInterval: 1 }, { type: 'value', minInterval: 1, name: 'vCPU' }],
        series: [
            { type: 'bar', name: t('requests_submitted'), data: series('requests_submitted') },
            { type: 'bar', name: t('requests_approved'), data: series('requests_approved') },
            { type: 'line', name: t('allocations_created'), data: series('allocations') },
            { type: 'line', name: t('findings_raised'), data: series('findings') },
            { type: 'line', name: t('allocated_vcpus'), yAxisIndex: 1, data: series('allocated_vcpus'), lineStyle: { type: 'dashed' } },
        ],
    };
    const ages = [['under_1d', rq.under_1d], ['from_1d_to_3d', rq.from_1d_to_3d], ['from_3d_to_7d', rq.from_3d_to_7d], ['over_7d', rq.over_7d]];
    return (
        <div class="dashboard">
            <div class="cards">
                <div class="card-stat" data-testid="cloud-share">
                    <span class="stat-label">{t('cloud_share')}</span>
                    <span class="stat-value">{pct(sy.share)}</span>
                    <span class="stat-sub">{t('systems_on_cloud', { a: sy.on_cloud, b: sy.total })}</span>
                </div>
                <Link to="/queue" class="card-stat" data-testid="waiting">
                    <span class="stat-label">{t('waiting_requests')}</span>
                    <span class="stat-value">{rq.waiting}</span>
                    <span class="stat-sub">{rq.oldest_since ? t('oldest_waiting', { d: age(rq.oldest_since) }) : t('none')}</span>
                    <span class="stat-sub">{t('waiting_split', { r: rq.to_review, a: rq.to_allocate, t: rq.in_trial })}</span>
                </Link>
                <Link to="/allocations?state=active&purpose=production" class="card-stat" data-testid="active">
                    <span class="stat-label">{t('active_allocations')}</span>
                    <span class="stat-value">{al.active}</span>
                    <span class="stat-sub">{`${al.vcpus} vCPU · ${mib(al.memory_mib)} · ${al.disk_gib} GiB · ${al.instances} ×`}</span>
                </Link>
                <Link to="/findings?state=live" class="card-stat" data-testid="findings">
                    <span class="stat-label">{t('idle_over')}</span>
                    <span class="stat-value">{`${fi.idle} / ${fi.over_provisioned}`}</span>
                    <span class="stat-sub">{t('reclaimable_res', { v: fi.reclaimable_vcpus, m: `${fi.reclaimable_memory_gib} GiB` })}</span>
                </Link>
            </div>
            <Section title={t('waiting_by_age')}>
                <Table caption={t('waiting_by_age')} head={ages.map(([k]) => t(`age_${k}`))}>
                    <tr>{ages.map(([, v]) => <td>{v}</td>)}</tr>
                </Table>
            </Section>
            <Section title={t('host_capacity')}>
                <Table caption={t('host_capacity')} count={(d.hosts || []).length}
                    head={[t('name'), t('pool'), t('capacity'), t('allocated'), t('quota_headroom'), t('maintenance'), t('enabled')]}>
                    {(d.hosts || []).map((h) => (
                        <tr>
                            <td>{h.name}</td>
                            <td>{tv('pool', h.pool)}</td>
                            <td>{`${h.capacity_vcpus} vCPU · ${mib(h.capacity_memory_mib)} · ${h.capacity_disk_gib} GiB`}</td>
                            <td>{`${h.used_vcpus} vCPU · ${mib(h.used_memory_mib)} · ${h.used_disk_gib} GiB`}</td>
                            <td class={h.headroom && h.headroom.vcpus < 0 ? 'neg' : ''}>{h.headroom ? `${h.headroom.vcpus} vCPU · ${mib(h.headroom.memory_mib)} · ${h.headroom.disk_gib} GiB` : t('dash')}</td>
                            <td>{h.maintenance ? t('yes') : t('no')}</td>
                            <td>{h.enabled ? t('yes') : t('no')}</td>
                        </tr>
                    ))}
                </Table>
            </Section>
            <Section title={t('trends')}>
                <Chart option={trend} label={t('chart_alt', { m: t('trends') })} height={260} />
                <details>
                    <summary>{t('data_table')}</summary>
                    <Table caption={t('trends')} head={[t('month'), t('requests_submitted'), t('requests_approved'), t('allocations_created'), t('allocated_vcpus'), t('findings_raised')]}>
                        {months.map((m, i) => <tr><td>{m}</td>{trend.series.map((x) => <td>{x.data[i]}</td>)}</tr>)}
                    </Table>
                </details>
            </Section>
        </div>
    );
}

function HostTable({ hosts, editable, onChange }) {
    return (
        <Table caption={t('hosts')} count={hosts.length}
            head={[t('name'), t('pool'), t('connection'), t('capacity'), t('allocated'), t('free_room'), t('maintenance'), t('enabled')]}>
            {hosts.map((h) => (
                <tr data-host={h.name}>
                    <td>{h.name}<br /><small class="muted">{h.uri}</small></td>
                    <td>{tv('pool', h.pool)}</td>
                    <td>
                        <span class={`mark mark-${h.connection.state === 'connected' ? 'ok' : 'fail'}`}>{t(h.connection.state)}</span>
                        {h.connection.hypervisor ? ` · ${h.connection.hypervisor}` : ''}
                        <br /><small class="muted">{h.connection.since ? <>{t('since', { t: '' })}<Time iso={h.connection.since} /></> : null}</small>
                        {h.connection.error ? <><br /><small class="error-text">{h.connection.error}</small></> : null}
                    </td>
                    <td>{`${h.capacity.cpus} CPU · ${mib(h.capacity.memory_mib)} · ${h.capacity.disk_gib} GiB`}</td>
                    <td>{`${h.allocated.vcpus} vCPU · ${mib(h.allocated.memory_mib)} · ${h.allocated.disk_gib} GiB · ${h.allocated.instances} ×`}</td>
                    <td>{`${h.free_after_overcommit.vcpus} vCPU · ${mib(h.free_after_overcommit.memory_mib)} · ${h.free_after_overcommit.disk_gib} GiB`}</td>
                    <td>{editable ? <Toggle label={`${t('maintenance')}: ${h.name}`} value={h.maintenance} onSet={(v) => patch(`hosts/${h.id}`, { maintenance: v }).then(onChange)} /> : (h.maintenance ? t('yes') : t('no'))}</td>
                    <td>{editable ? <Toggle label={`${t('enabled')}: ${h.name}`} value={h.enabled} onSet={(v) => patch(`hosts/${h.id}`, { enabled: v }).then(onChange)} /> : (h.enabled ? t('yes') : t('no'))}</td>
                </tr>
            ))}
        </Table>
    );
}

// A switch: a checkbox with role switch, labelled for screen readers.
function Toggle({ label, value, onSet }) {
    const [busy, setBusy] = useState(false);
    const [err, setErr] = useState(null);
    return (
        <span class="toggle">
            <input type="checkbox" role="switch" aria-label={label} checked={value} disabled={busy}
                onChange={async (e) => {
                    const v = e.currentTarget.checked;
                    setBusy(true);
                    setErr(null);
                    try {
                        await onSet(v);
                    } catch (x) {
                        setErr(x);
                    } finally {
                        setBusy(false);
                    }
                }} />
            <Err error={err} />
        </span>
    );
}

// ---- hosts (vendor; read by the reviewer and the auditor)

export function Hosts({ role }) {
    const r = useLoad(() => get_all('hosts'), []);
    const [made, setMade] = useState(null);
    usePoll(() => r.reload(), 10000, true);
    return (
        <Page title={t('hosts')} wide>
            <Loaded r={r}>{(hosts) => <HostTable hosts={hosts} editable={role === 'vendor'} onChange={r.reload} />}</Loaded>
            {role === 'vendor' ? (
                <Section title={t('register_host')}>
                    {made ? <Secret label={`${t('agent_token')} (${made.name})`} value={made.agent_token} /> : null}
                    <HostForm onDone={(h) => {
                        setMade(h);
                        r.reload();
                    }} />
                    {r.data && r.data.length ? <RotateAgent hosts={r.data} /> : null}
                </Section>
            ) : null}
        </Page>
    );
}

function HostForm({ onDone }) {
    const [name, setName] = useState('');
    const [uri, setUri] = useState('qemu+tls://');
    const [pool, setPool] = useState('production');
    const [sp, setSp] = useState('default');
    return (
        <Form submit={t('register_host')} label={t('register_host')} onSubmit={async () => onDone(await post('hosts', { name, uri, pool, storage_pool: sp }))}>
            <Field label={t('name')}><input required pattern="[a-z0-9][a-z0-9._\-]{0,63}" value={name} onInput={(e) => setName(e.currentTarget.value)} /></Field>
            <Field label={t('uri')} wide><input required value={uri} onInput={(e) => setUri(e.currentTarget.value)} /></Field>
            <Field label={t('pool')}><EnumSelect prefix="pool" values={['production', 'trial']} value={pool} onChange={setPool} /></Field>
            <Field label={t('storage_pool')}><input required value={sp} onInput={(e) => setSp(e.currentTarget.value)} /></Field>
        </Form>
    );
}

function RotateAgent({ hosts }) {
    const [h, setH] = useState(hosts[0].id);
    const [tok, setTok] = useState(null);
    return (
        <div class="form-inline">
            <Field label={t('host')}>
                <select value={h} onChange={(e) => setH(Number(e.currentTarget.value))}>
                    {hosts.map((x) => <option value={x.id}>{x.name}</option>)}
                </select>
            </Field>
            <Action onRun={async () => setTok((await post(`hosts/${h}/agent-token`, {})).agent_token)}
                confirm_text={t('rotate_agent_token')}>{t('rotate_agent_token')}</Action>
            {tok ? <Secret label={t('agent_token')} value={tok} /> : null}
        </div>
    );
}

// ---- jobs

export function Jobs({ query }) {
    const [state, setState] = useState(query.state || '');
    const p = usePaged('jobs', { state });
    const live = p.items.some((j) => j.state === 'queued' || j.state === 'running');
    usePoll(() => p.reload(), 2000, live);
    return (
        <Page title={t('jobs')} wide>
            <div class="filters">
                <Field label={t('state')}>
                    <EnumSelect prefix="js" values={['queued', 'running', 'done', 'error']} value={state} onChange={setState} any />
                </Field>
                {live ? <p class="hint" role="status">{t('live_polling')}</p> : null}
            </div>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('jobs')} count={p.items.length}
                    head={[t('job_n', { n: '' }), t('kind'), t('state'), t('progress'), t('allocation'), t('request'), t('created_at'), t('details')]}>
                    {p.items.map((j) => (
                        <tr data-job={j.id}>
                            <td><Link to={`/jobs/${j.id}`}>{t('job_n', { n: j.id })}</Link></td>
                            <td>{tv('jk', j.kind)}</td>
                            <td><Badge prefix="js" value={j.state} /></td>
                            <td><Bar percent={j.progress ? j.progress.percent : 0} label={t('progress')} /></td>
                            <td>{j.allocation_id ? <Link to={`/allocations/${j.allocation_id}`}>{t('allocation_n', { n: j.allocation_id })}</Link> : t('dash')}</td>
                            <td>{j.request_id ? <Link to={`/requests/${j.request_id}`}>{t('request_n', { n: j.request_id })}</Link> : t('dash')}</td>
                            <td><Time iso={j.created_at} /></td>
                            <td>{j.error ? <span class="error-text">{j.error}</span> : ''}</td>
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
        </Page>
    );
}

export function JobPage({ id }) {
    const r = useLoad(() => get(`jobs/${id}`), [id]);
    const live = r.data && (r.data.state === 'queued' || r.data.state === 'running');
    usePoll(() => r.reload(), 2000, live);
    return (
        <Page title={t('job_n', { n: id })} wide>
            <Loaded r={r}>{(j) => (
                <div class="job" data-state={j.state}>
                    <Facts rows={[
                        [t('kind'), tv('jk', j.kind)],
                        [t('state'), <Badge prefix="js" value={j.state} />],
                        [t('progress'), <><Bar percent={j.progress.percent} label={t('progress')} /> {`${j.progress.done} / ${j.progress.total}`}</>],
                        j.allocation_id ? [t('allocation'), <Link to={`/allocations/${j.allocation_id}`}>{t('allocation_n', { n: j.allocation_id })}</Link>] : null,
                        j.request_id ? [t('request'), <Link to={`/requests/${j.request_id}`}>{t('request_n', { n: j.request_id })}</Link>] : null,
                        [t('created_at'), <Time iso={j.created_at} />],
                        j.finished_at ? [t('js_done'), <Time iso={j.finished_at} />] : null,
                        j.error ? [t('js_error'), <span class="error-text">{j.error}</span>] : null,
                    ]} />
                    {live ? <p class="hint" role="status">{t('live_polling')}</p> : null}
                    <Table caption={t('steps')} head={['#', t('action'), t('instance'), t('state'), t('attempts'), t('message')]}>
                        {(j.steps || []).map((s) => (
                            <tr>
                                <td>{s.seq + 1}</td>
                                <td>{s.action}{s.arg ? ` (${s.arg})` : ''}</td>
                                <td>{s.instance_id ? `#${s.instance_id}` : t('dash')}</td>
                                <td><Badge prefix="js" value={s.state} /></td>
                                <td>{s.attempts}</td>
                                <td>{s.error || ''}</td>
                            </tr>
                        ))}
                    </Table>
                </div>
            )}</Loaded>
        </Page>
    );
}

// ---- events

export function Events({ query }) {
    const [open, setOpen] = useState(query.open || 'true');
    const p = usePaged('events', { open });
    return (
        <Page title={t('events')} wide>
            <div class="filters">
                <Field label={t('state')}>
                    <select value={open} onChange={(e) => setOpen(e.currentTarget.value)}>
                        <option value="">{t('all')}</option>
                        <option value="true">{t('open_only')}</option>
                        <option value="false">{t('resolved_only')}</option>
                    </select>
                </Field>
            </div>
            {p.error ? <Err error={p.error} /> : p.data === undefined ? <Loading /> : (
                <Table caption={t('events')} count={p.items.length}
                    head={[t('kind'), t('severity'), t('host'), t('instance'), t('message'), t('first_seen'), t('last_seen'), t('resolved_at')]}>
                    {p.items.map((e) => (
                        <tr>
                            <td>{tv('ek', e.kind)}</td>
                            <td><Badge prefix="sev" value={e.severity} /></td>
                            <td><Name type="host" id={e.host_id} name={e.host_name} /></td>
                            <td>{e.allocation_id ? <Link to={`/allocations/${e.allocation_id}`}>{e.domain_name}</Link> : e.domain_name}</td>
                            <td>{e.message}</td>
                            <td><Time iso={e.first_seen} /></td>
                            <td><Time iso={e.last_seen} /></td>
                            <td><Time iso={e.resolved_at} /></td>
                        </tr>
                    ))}
                </Table>
            )}
            <Pager p={p} />
        </Page>
    );
}
