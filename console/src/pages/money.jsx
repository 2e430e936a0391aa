// SPDX-License-Identifier: Apache-2.0
// Money (issue 12): the monthly cost statement (GET /v1/reports/costs, docs/costs.md) and the
// vendor's monthly service-quality scorecard (GET /v1/reports/service-quality,
// docs/service-quality.md), each with the trend of the months before it. The trend is the same
// endpoints asked for each month with detail=totals (the sums without the lines and the
// evidence; at most TREND_MONTHS, a few at a time): no second path to the figures. Money is
// shown from the API's integer fen as yuan with two decimals.
import { useState } from 'preact/hooks';
import { get, post, q } from '../api.js';
import { S, lang, t, tv } from '../i18n.js';
import { href, navigate } from '../router.js';
import { Chart } from '../charts.jsx';
import { Badge, Facts, Field, Form, Link, Loaded, Name, Page, Section, Table, Time, useLoad } from '../ui.jsx';
import { DeptPicker, Downloads } from './reports.jsx';

export const TREND_MONTHS = 12;
const TREND_PARALLEL = 4;
const EVIDENCE_SHOWN = 200;

function this_month() {
    return new Date().toISOString().slice(0, 7);
}

function valid_month(m) {
    return /^(2[0-1][0-9]{2}|2200)-(0[1-9]|1[0-2])$/.test(m || '') ? m : this_month();
}

// The @n months up to and including @month, oldest first ("YYYY-MM").
export function months_to(month, n) {
    let y = Number(month.slice(0, 4));
    let m = Number(month.slice(5, 7));
    const out = [];
    for (let i = 0; i < n; i++) {
        out.unshift(`${y}-${String(m).padStart(2, '0')}`);
        if (--m === 0) {
            m = 12;
            y--;
        }
    }
    return out.filter((x) => x >= '2000-01');
}

// fn(month) for each month, TREND_PARALLEL at a time; a month that fails is null.
async function each_month(months, fn) {
    const out = new Array(months.length).fill(null);
    let next = 0;
    const worker = async () => {
        while (next < months.length) {
            const i = next++;
            try {
                out[i] = await fn(months[i]);
            } catch (e) {
                out[i] = null;
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(TREND_PARALLEL, months.length) }, worker));
    return out;
}

// Integer fen as yuan with two decimals: 4284 → "42.84".
export function yuan(fen) {
    if (fen === null || fen === undefined || isNaN(fen)) return t('dash');
    const neg = fen < 0;
    const a = Math.abs(Math.round(fen));
    const s = `${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
    return neg ? `-${s}` : s;
}

function Stat({ label, value, test }) {
    return (
        <div class="card-stat" data-stat={test}>
            <span class="stat-label">{label}</span>
            <span class="stat-value">{value}</span>
        </div>
    );
}

function MonthForm({ path, month, dept, role }) {
    const [m, setM] = useState(month);
    const [d, setD] = useState(dept || '');
    return (
        <form class="filters no-print" onSubmit={(e) => {
            e.preventDefault();
            navigate(href(path, { month: m, department: d }));
        }} aria-label={t('show')}>
            <Field label={t('month')}><input type="month" name="month" required min="2000-01" max="2200-12" value={m} onInput={(e) => setM(e.currentTarget.value)} /></Field>
            {role ? <DeptPicker role={role} value={d} onChange={setD} /> : null}
            <div class="form-actions"><button type="submit" class="btn-primary">{t('show')}</button></div>
        </form>
    );
}

// ---- the cost statement

// {trial, production} fen of a statement: the broker's split by purpose, or (from an older
// broker) its allocations' totals added up.
function by_purpose(doc) {
    if (doc.purposes) {
        return { trial: doc.purposes.trial.total_fen, production: doc.purposes.production.total_fen };
    }
    const out = { trial: 0, production: 0 };
    for (const d of doc.departments || []) {
        for (const s of d.systems || []) {
            for (const a of s.allocations || []) out[a.purpose === 'trial' ? 'trial' : 'production'] += a.total_fen || 0;
        }
    }
    return out;
}

export function CostsPage({ role, query }) {
    const month = valid_month(query.month);
    const dept = role === 'department' ? '' : (query.department || '');
    const params = { month, department: dept };
    const r = useLoad(() => get(`reports/costs${q(params)}`), [month, dept]);
    const trend = useLoad(() => each_month(months_to(month, TREND_MONTHS), async (m) => {
        const doc = await get(`reports/costs${q({ month: m, department: dept, detail: 'totals' })}`);
        return { month: m, total_fen: (doc.total && doc.total.total_fen) || 0, ...by_purpose(doc) };
    }), [month, dept]);
    return (
        <Page title={`${t('cost_statement')} ${month}`} wide>
            <MonthForm path="/reports/costs" month={month} dept={dept} role={role} />
            <div class="no-print"><Downloads path="reports/costs" params={params} /></div>
            <Loaded r={r}>{(doc) => <Statement doc={doc} role={role} month={month} />}</Loaded>
            <CostTrend r={trend} dept={dept} />
        </Page>
    );
}

function Period({ doc }) {
    return (
        <Facts rows={[
            [t('period'), <><Time iso={doc.from} /> – <Time iso={doc.to} /></>],
            [t('completeness'), doc.complete ? t('month_complete') : t('month_to_date')],
            [t('currency'), doc.currency === 'CNY' ? t('cny') : doc.currency],
        ]} />
    );
}

function Statement({ doc, role, month }) {
    const tot = doc.total || {};
    const depts = doc.departments || [];
    const p = by_purpose(doc);
    const link_dept = depts.length > 1 && role !== 'department';
    return (
        <div class="report" data-report="costs">
            <Period doc={doc} />
            <div class="cards">
                <Stat test="total" label={t('cost_total')} value={yuan(tot.total_fen)} />
                <Stat test="compute" label={t('cost_compute')} value={yuan(tot.compute_fen)} />
                <Stat test="memory" label={t('cost_memory')} value={yuan(tot.memory_fen)} />
                <Stat test="disk" label={t('cost_disk')} value={yuan(tot.disk_fen)} />
                <Stat test="production" label={t('cost_production')} value={yuan(p.production)} />
                <Stat test="trial" label={t('cost_trial')} value={yuan(p.trial)} />
            </div>
            <Section title={t('cost_by_department')}>
                <Table caption={t('cost_by_department')} count={depts.length}
                    head={[t('department'), t('dept_code'), t('cost_compute'), t('cost_memory'), t('cost_disk'), t('cost_total')]}>
                    {depts.map((d) => (
                        <tr>
                            <td>{link_dept ? <Link to={href('/reports/costs', { month, department: d.id })}>{d.name}</Link> : d.name}</td>
                            <td>{d.code}</td>
                            <td class="num">{yuan(d.compute_fen)}</td>
                            <td class="num">{yuan(d.memory_fen)}</td>
                            <td class="num">{yuan(d.disk_fen)}</td>
                            <td class="num">{yuan(d.total_fen)}</td>
                        </tr>
                    ))}
                    <tr class="total-row">
                        <th scope="row">{t('total')}</th>
                        <td />
                        <td class="num">{yuan(tot.compute_fen)}</td>
                        <td class="num">{yuan(tot.memory_fen)}</td>
                        <td class="num">{yuan(tot.disk_fen)}</td>
                        <td class="num">{yuan(tot.total_fen)}</td>
                    </tr>
                </Table>
            </Section>
            {depts.length === 1 ? <DeptLines d={depts[0]} /> : null}
            {link_dept ? <p class="hint">{t('cost_pick_department')}</p> : null}
        </div>
    );
}

// One department: a line per allocation (system → allocation, with its instances' names).
function DeptLines({ d }) {
    const rows = [];
    for (const s of d.systems || []) for (const a of s.allocations || []) rows.push({ s, a });
    return (
        <Section title={`${d.name} · ${t('cost_by_allocation')}`}>
            <Table caption={`${d.name} · ${t('cost_by_allocation')}`} count={rows.length}
                head={[t('system'), t('allocation'), t('purpose'), t('instances'), t('cost_compute'), t('cost_memory'), t('cost_disk'), t('cost_total')]}>
                {rows.map(({ s, a }) => (
                    <tr data-allocation={a.id}>
                        <td><Name type="system" id={s.id} name={s.name} to={`/systems/${s.id}`} /></td>
                        <td><Link to={`/allocations/${a.id}`}>{t('allocation_n', { n: a.id })}</Link></td>
                        <td>{tv('purpose', a.purpose)}</td>
                        <td>{(a.instances || []).map((i) => i.name).join('、')}</td>
                        <td class="num">{yuan(a.compute_fen)}</td>
                        <td class="num">{yuan(a.memory_fen)}</td>
                        <td class="num">{yuan(a.disk_fen)}</td>
                        <td class="num">{yuan(a.total_fen)}</td>
                    </tr>
                ))}
            </Table>
        </Section>
    );
}

function CostTrend({ r, dept }) {
    return (
        <Section title={t('cost_trend')}>
            <Loaded r={r}>{(rows) => {
                const ok = rows.filter(Boolean);
                const option = {
                    grid: { left: 64, right: 16, top: 36, bottom: 28 },
                    tooltip: { trigger: 'axis' },
                    legend: { top: 0 },
                    xAxis: { type: 'category', data: ok.map((x) => x.month) },
                    yAxis: { type: 'value', name: t('yuan') },
                    series: [
                        { type: 'bar', stack: 'c', name: t('cost_production'), data: ok.map((x) => x.production / 100) },
                        { type: 'bar', stack: 'c', name: t('cost_trial'), data: ok.map((x) => x.trial / 100) },
                    ],
                };
                return (
                    <div class="trend" data-trend="costs">
                        <figure class="chart-box">
                            <figcaption>{t('cost_trend')}</figcaption>
                            <Chart option={option} label={t('chart_alt', { m: t('cost_trend') })} />
                        </figure>
                        <Table caption={t('cost_trend')} count={ok.length}
                            head={[t('month'), t('cost_production'), t('cost_trial'), t('cost_total')]}>
                            {ok.map((x) => (
                                <tr>
                                    <td><Link to={href('/reports/costs', { month: x.month, department: dept })}>{x.month}</Link></td>
                                    <td class="num">{yuan(x.production)}</td>
                                    <td class="num">{yuan(x.trial)}</td>
                                    <td class="num">{yuan(x.total_fen)}</td>
                                </tr>
                            ))}
                        </Table>
                    </div>
                );
            }}</Loaded>
        </Section>
    );
}

// ---- the vendor's scorecard

const SCORED = ['met', 'missed'];

export function ServiceQualityPage({ role, query }) {
    const month = valid_month(query.month);
    const r = useLoad(() => get(`reports/service-quality${q({ month })}`), [month]);
    const trend = useLoad(() => each_month(months_to(month, TREND_MONTHS), async (m) => {
        const doc = await get(`reports/service-quality${q({ month: m, detail: 'totals' })}`);
        const inds = doc.indicators || [];
        return {
            month: m,
            fee_fen: doc.fee_fen,
            fee_after_fen: doc.fee_after_fen,
            met: inds.filter((x) => x.status === 'met').length,
            scored: inds.filter((x) => SCORED.includes(x.status)).length,
        };
    }), [month]);
    const l = lang.get() === 'en' ? 'en' : 'zh';
    const html = `v1/reports/service-quality${q({ month, format: 'html', lang: l })}`;
    const json = `v1/reports/service-quality${q({ month, format: 'json' })}`;
    const csv = `v1/reports/service-quality${q({ month, format: 'csv', lang: l })}`;
    return (
        <Page title={`${t('sq_report')} ${month}`} wide>
            <MonthForm path="/reports/service-quality" month={month} />
            <p class="button-row downloads no-print">
                <a class="btn-link" href={html} download>{t('dl_html')}</a>
                <a class="btn-link" href={csv} download>{t('dl_csv')}</a>
                <a class="btn-link" href={json} download>{t('dl_json')}</a>
            </p>
            <Loaded r={r}>{(doc) => <Scorecard doc={doc} role={role} reload={r.reload} trend={trend} />}</Loaded>
        </Page>
    );
}

// The cards, the indicators' table and the trend, then each indicator in detail (the evidence
// of a month can be long).
function Scorecard({ doc, role, reload, trend }) {
    const inds = doc.indicators || [];
    const met = inds.filter((x) => x.status === 'met').length;
    const scored = inds.filter((x) => SCORED.includes(x.status)).length;
    return (
        <div class="report" data-report="service-quality">
            <Period doc={doc} />
            <div class="cards">
                <Stat test="fee" label={t('sq_fee')} value={yuan(doc.fee_fen)} />
                <Stat test="deduction" label={t('sq_deduction')} value={yuan(doc.deduction_fen)} />
                <Stat test="fee_after" label={t('sq_fee_after')} value={yuan(doc.fee_after_fen)} />
                <Stat test="met" label={t('sq_met_of')} value={`${met} / ${scored}`} />
            </div>
            {doc.deductions_fen > doc.deduction_fen ? (
                <p class="hint">{t('sq_capped', { sum: yuan(doc.deductions_fen), cap: doc.cap_percent })}</p>
            ) : null}
            <Section title={t('sq_indicators')}>
                <Table caption={t('sq_indicators')} count={inds.length}
                    head={[t('sq_indicator'), t('sq_target'), t('sq_measured'), t('sq_status'), t('sq_deduction_pct'), t('sq_deduction')]}>
                    {inds.map((x) => (
                        <tr data-indicator={x.id}>
                            <td>{detailed(x) ? <a href={`#sq-${x.id}`} onClick={(e) => jump(e, x.id)}>{tv('sqi', x.id)}</a> : tv('sqi', x.id)}</td>
                            <td><Values o={x.target} skip={['deduction_percent', 'cap_percent']} /></td>
                            <td><Values o={x.measured} /></td>
                            <td><Badge prefix="sq" value={x.status} /></td>
                            <td class="num">{x.deduction_percent === undefined ? t('dash') : `${x.deduction_percent}%`}</td>
                            <td class="num">{x.deduction_fen === undefined ? t('dash') : yuan(x.deduction_fen)}</td>
                        </tr>
                    ))}
                </Table>
            </Section>
            {inds.some((x) => !detailed(x)) ? <p class="hint">{t('sq_not_measured_note')}</p> : null}
            <SqTrend r={trend} />
            {inds.filter(detailed).map((x) => <Indicator x={x} month={doc.month} role={role} reload={reload} />)}
        </div>
    );
}

// An indicator with more to show than its name and result has a section of its own (one not
// measured yet has neither target nor figures: its row says all).
function detailed(x) {
    return Object.keys(x).some((k) => k !== 'id' && k !== 'status');
}

// Moves to an indicator's section without leaving the hash route.
function jump(e, id) {
    e.preventDefault();
    const el = document.getElementById(`sq-${id}`);
    if (el) {
        el.scrollIntoView();
        const h = el.querySelector('h2');
        if (h) {
            h.setAttribute('tabindex', '-1');
            h.focus({ preventScroll: true });
        }
    }
}

function Indicator({ x, month, role, reload }) {
    const ev = x.evidence || [];
    const ex = x.explanations || [];
    const rows = [];
    if (x.target) rows.push([t('sq_target'), <Values o={x.target} />]);
    if (x.measured) rows.push([t('sq_measured'), <Values o={x.measured} />]);
    rows.push([t('sq_status'), <Badge prefix="sq" value={x.status} />]);
    if (x.deduction_fen !== undefined) rows.push([t('sq_deduction'), `${yuan(x.deduction_fen)}（${x.deduction_percent}%）`]);
    for (const [k, v] of Object.entries(x)) {
        if (['id', 'status', 'target', 'measured', 'evidence', 'explanations', 'deduction_fen', 'deduction', 'deduction_percent', 'steps_missed'].includes(k)) continue;
        rows.push([label('sqf', k), <Value k={k} v={v} />]);
    }
    return (
        <Section title={tv('sqi', x.id)} id={`sq-${x.id}`}>
            <Facts rows={rows} />
            {ev.length ? <Evidence ind={x} /> : null}
            {ex.length ? (
                <div class="explanations">
                    <h3>{t('sq_explanations')}</h3>
                    <ul class="plain">
                        {ex.map((e) => (
                            <li data-explanation={e.id}>
                                <p class="explanation-text">{e.text}</p>
                                <small class="hint"><Name type="account" id={e.account_id} name={e.account_name} /> · <Time iso={e.created_at} /></small>
                            </li>
                        ))}
                    </ul>
                </div>
            ) : null}
            {role === 'vendor' && x.status === 'missed' ? <Explain month={month} indicator={x.id} reload={reload} /> : null}
        </Section>
    );
}

function Explain({ month, indicator, reload }) {
    const [text, setText] = useState('');
    return (
        <Form label={`${t('sq_explain')} · ${tv('sqi', indicator)}`} submit={t('sq_explain')} class="sq-explain"
            done={t('sq_explained')}
            onSubmit={async () => {
                await post('reports/service-quality/explanations', { month, indicator, text });
                setText('');
                reload();
            }}>
            <Field label={t('sq_explanation')} hint={t('sq_explanation_hint')} wide>
                <textarea name="explanation" required maxLength={4000} rows={3} value={text} onInput={(e) => setText(e.currentTarget.value)} />
            </Field>
        </Form>
    );
}

// The label of a field of the JSON: the console's words where it has them, else the field's
// own name (a field from a newer broker is shown, not hidden).
function label(prefix, k) {
    return S[`${prefix}_${k}`] ? t(`${prefix}_${k}`) : k.replace(/_/g, ' ');
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;

// One value of the scorecard's JSON, by what its name says it is.
function Value({ k, v }) {
    if (v === null || v === undefined) return <span>{t('dash')}</span>;
    if (typeof v === 'boolean') return <span>{v ? t('yes') : t('no')}</span>;
    if (typeof v === 'string') {
        if (ISO.test(v)) return <Time iso={v} />;
        if (k === 'status' || k === 'result') return <Badge prefix="sq" value={v} />;
        if (k === 'severity') return <Badge prefix="sev" value={v} />;
        return <span>{S[`sqv_${v}`] ? t(`sqv_${v}`) : v}</span>;
    }
    if (Array.isArray(v)) return <span>{v.length}</span>;
    if (typeof v === 'object' && Object.values(v).every((x) => typeof x === 'string' && ISO.test(x))) {
        // A stretch of time ({from, to}): each end in the city's time.
        return <span>{Object.entries(v).map(([sk, sv], i) => <span>{i ? ' · ' : ''}{label('sqf', sk)} <Time iso={sv} /></span>)}</span>;
    }
    if (typeof v === 'object') {
        // By severity (or any other key): "严重 0.5 h · 高危 1 h".
        return <span>{Object.entries(v).map(([sk, sv]) => `${tv('sev', sk)} ${scalar(k, sv)}`).join(' · ')}</span>;
    }
    return <span>{scalar(k, v)}</span>;
}

function scalar(k, v) {
    if (typeof v !== 'number') return String(v);
    if (k.endsWith('_ms')) return `${(v / 3600000).toFixed(2)} h`;
    if (k.endsWith('_fen')) return `${yuan(v)} ${t('yuan')}`;
    if (k.includes('percent')) return `${v}%`;
    if (k.endsWith('hours')) return `${v} h`;
    if (k.endsWith('days')) return `${v} d`;
    return String(v);
}

// An object's fields as "label value" lines (the target, the measured value).
function Values({ o, skip = [] }) {
    if (!o || typeof o !== 'object') return <span>{t('dash')}</span>;
    const e = Object.entries(o).filter(([k]) => !skip.includes(k));
    if (!e.length) return <span>{t('dash')}</span>;
    return (
        <ul class="plain values">
            {e.map(([k, v]) => <li>{label('sqf', k)}：<Value k={k} v={v} /></li>)}
        </ul>
    );
}

// Where a case of each kind is shown in the console.
const EVIDENCE_PAGES = {
    request: (id) => `/requests/${id}`,
    job: (id) => `/jobs/${id}`,
    allocation: (id) => `/allocations/${id}`,
    finding: (id) => `/findings/${id}`,
    system: (id) => `/systems/${id}`,
    incident: () => '/security',
    vulnerability: () => '/security',
    backup: () => '/security',
    event: () => '/events',
};

// The evidence: a row per item, the columns of the fields the items carry (in their order);
// an item's id is a link to its page where the console has one, an instance is its name.
function Evidence({ ind }) {
    const ev = ind.evidence;
    const keys = [];
    for (const e of ev.slice(0, EVIDENCE_SHOWN)) for (const k of Object.keys(e)) if (!keys.includes(k)) keys.push(k);
    const cols = keys.filter((k) => !(k === 'instance_id' && keys.includes('name')) && !(k === 'kind' && keys.includes('id')));
    const shown = ev.slice(0, EVIDENCE_SHOWN);
    return (
        <div class="evidence">
            <Table caption={`${tv('sqi', ind.id)} · ${t('evidence')}`}
                head={cols.map((k) => (k === 'id' ? t('sq_case') : label('sqf', k)))}>
                {shown.map((e) => (
                    <tr>{cols.map((k) => <td>{k === 'id' ? <CaseLink kind={e.kind} id={e.id} /> : k === 'name' ? (e[k] || t('dash')) : <EvidenceIds k={k} v={e[k]} />}</td>)}</tr>
                ))}
            </Table>
            {ev.length > shown.length ? <p class="hint">{t('sq_evidence_more', { n: shown.length, m: ev.length })}</p> : null}
        </div>
    );
}

function CaseLink({ kind, id }) {
    const text = `${tv('obj', kind)} #${id}`;
    const to = EVIDENCE_PAGES[kind];
    return to ? <Link to={to(id)}>{text}</Link> : <span>{text}</span>;
}

// A list of ids in the evidence (events, host outages): links where the console has a page.
function EvidenceIds({ k, v }) {
    if (!Array.isArray(v)) return <Value k={k} v={v} />;
    if (!v.length) return <span>{t('dash')}</span>;
    const kind = { events: 'event', jobs: 'job', requests: 'request', incidents: 'incident' }[k];
    if (kind && EVIDENCE_PAGES[kind]) return <span>{v.map((id, i) => <>{i ? '、' : ''}<CaseLink kind={kind} id={id} /></>)}</span>;
    // No page to link to (host outages): how many; the ids are in the downloads.
    return <span>{v.length}</span>;
}

function SqTrend({ r }) {
    return (
        <Section title={t('sq_trend')}>
            <Loaded r={r}>{(rows) => {
                const ok = rows.filter(Boolean);
                const option = {
                    grid: { left: 64, right: 48, top: 36, bottom: 28 },
                    tooltip: { trigger: 'axis' },
                    legend: { top: 0 },
                    xAxis: { type: 'category', data: ok.map((x) => x.month) },
                    yAxis: [{ type: 'value', name: t('yuan') }, { type: 'value', name: t('sq_met_axis'), minInterval: 1 }],
                    series: [
                        { type: 'bar', name: t('sq_fee_after'), data: ok.map((x) => x.fee_after_fen / 100) },
                        { type: 'line', name: t('sq_met_count'), yAxisIndex: 1, data: ok.map((x) => x.met) },
                    ],
                };
                return (
                    <div class="trend" data-trend="service-quality">
                        <figure class="chart-box">
                            <figcaption>{t('sq_trend')}</figcaption>
                            <Chart option={option} label={t('chart_alt', { m: t('sq_trend') })} />
                        </figure>
                        <Table caption={t('sq_trend')} count={ok.length}
                            head={[t('month'), t('sq_fee'), t('sq_fee_after'), t('sq_met_of')]}>
                            {ok.map((x) => (
                                <tr>
                                    <td><Link to={href('/reports/service-quality', { month: x.month })}>{x.month}</Link></td>
                                    <td class="num">{yuan(x.fee_fen)}</td>
                                    <td class="num">{yuan(x.fee_after_fen)}</td>
                                    <td class="num">{`${x.met} / ${x.scored}`}</td>
                                </tr>
                            ))}
                        </Table>
                    </div>
                );
            }}</Loaded>
        </Section>
    );
}
