// SPDX-License-Identifier: Apache-2.0
// The annual assessment (Art. 9) and the operations report (Art. 8), shown in the page from
// their JSON, with the broker's HTML, CSV and JSON downloads and a print view.
import { useState } from 'preact/hooks';
import { get, get_all, q } from '../api.js';
import { lang, t, tv } from '../i18n.js';
import { mib, num, pct } from '../fmt.js';
import { href, navigate } from '../router.js';
import { Chart } from '../charts.jsx';
import { Err, Facts, Field, Link, Loaded, Page, Section, Table, Time, useLoad } from '../ui.jsx';

function this_year() {
    return new Date().getUTCFullYear();
}

function this_month() {
    return new Date().toISOString().slice(0, 7);
}

export function Reports({ role }) {
    return (
        <Page title={t('reports')}>
            <ul class="plain big-links">
                {role !== 'vendor' ? <li><Link to="/reports/assessment">{t('assessment_report')}</Link></li> : null}
                <li><Link to="/reports/operations">{t('operations_report')}</Link></li>
                {role !== 'vendor' ? <li><Link to="/reports/costs">{t('cost_statement')}</Link></li> : null}
                {role !== 'department' ? <li><Link to="/reports/service-quality">{t('sq_report')}</Link></li> : null}
            </ul>
        </Page>
    );
}

export function Downloads({ path, params }) {
    const l = lang.get() === 'en' ? 'en' : 'zh';
    const u = (format) => `v1/${path}${q({ ...params, format, lang: l })}`;
    return (
        <p class="button-row downloads">
            <a class="btn-link" href={u('html')} download>{t('dl_html')}</a>
            <a class="btn-link" href={u('csv')} download>{t('dl_csv')}</a>
            <a class="btn-link" href={u('json')} download>{t('dl_json')}</a>
        </p>
    );
}

export function DeptPicker({ role, value, onChange }) {
    const d = useLoad(() => (role === 'department' ? Promise.resolve([]) : get_all('departments')), [role]);
    if (role === 'department' || !d.data) return null;
    return (
        <Field label={t('department')}>
            <select value={value} onChange={(e) => onChange(e.currentTarget.value)}>
                <option value="">{t('all_departments')}</option>
                {d.data.map((x) => <option value={x.id}>{x.name}</option>)}
            </select>
        </Field>
    );
}

// ---- the annual assessment

export function AssessmentPage({ role, query }) {
    const [year, setYear] = useState(query.year || String(this_year()));
    const [dept, setDept] = useState(query.department || '');
    const params = { year: query.year || String(this_year()), department: query.department || '' };
    const r = useLoad(() => get(`reports/assessment${q(params)}`), [params.year, params.department]);
    return (
        <Page title={`${t('assessment_report')} ${params.year}`} wide>
            <form class="filters no-print" onSubmit={(e) => {
                e.preventDefault();
                navigate(href('/reports/assessment', { year, department: dept }));
            }} aria-label={t('show')}>
                <Field label={t('year')}><input type="number" min="2000" max="2200" required value={year} onInput={(e) => setYear(e.currentTarget.value)} /></Field>
                <DeptPicker role={role} value={dept} onChange={setDept} />
                <div class="form-actions"><button type="submit" class="btn-primary">{t('show')}</button></div>
            </form>
            <div class="no-print">
                <Downloads path="reports/assessment" params={params} />
                <p><Link to={href('/print/assessment', params)}>{t('print_view')}</Link></p>
            </div>
            <Loaded r={r}>{(doc) => <Assessment doc={doc} />}</Loaded>
        </Page>
    );
}

function Assessment({ doc }) {
    const c = doc.city || {};
    const depts = [...(doc.departments || [])].sort((a, b) => (a.rank || 1e9) - (b.rank || 1e9));
    const bar = {
        grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
        tooltip: { trigger: 'axis' },
        xAxis: { type: 'value', max: 100 },
        yAxis: { type: 'category', inverse: true, data: depts.map((d) => d.name), axisLabel: { width: 180, overflow: 'truncate' } },
        series: [{ type: 'bar', name: t('overall_score'), data: depts.map((d) => d.overall_score) }],
    };
    return (
        <div class="report" data-report="assessment">
            <Facts rows={[[t('generated_at'), <Time iso={doc.generated_at} />], [t('period'), <><Time iso={doc.period_from} date /> – <Time iso={doc.period_to} date /></>]]} />
            <Section title={t('city_overview')}>
                <div class="cards">
                    <Stat label={t('cloud_share')} value={pct(c.cloud_share && c.cloud_share.share)} />
                    <Stat label={t('efficiency_score')} value={num(c.efficiency && c.efficiency.score, 1)} />
                    <Stat label={t('security_score')} value={num(c.security && c.security.score, 1)} />
                    <Stat label={t('overall_score')} value={num(c.overall_score, 1)} />
                    <Stat label={t('reclaimable_vcpus')} value={num(c.efficiency && c.efficiency.reclaimable_vcpus, 0)} />
                    <Stat label={t('reclaimable_gib')} value={num(c.efficiency && c.efficiency.reclaimable_memory_gib, 1)} />
                </div>
            </Section>
            {depts.length ? (
                <Section title={t('by_department')}>
                    <Chart option={bar} label={t('chart_alt', { m: t('by_department') })} height={Math.min(1200, 40 + 24 * depts.length)} />
                    <Table caption={t('by_department')} head={[t('rank'), t('department'), t('cloud_share'), t('cloud_score'), t('efficiency_score'), t('security_score'), t('overall_score')]}>
                        {depts.map((d) => (
                            <tr>
                                <td>{d.rank || t('dash')}</td>
                                <td>{d.name}</td>
                                <td>{pct(d.cloud_share && d.cloud_share.share)}</td>
                                <td>{num(d.cloud_share && d.cloud_share.score, 1)}</td>
                                <td>{num(d.efficiency && d.efficiency.score, 1)}</td>
                                <td>{num(d.security && d.security.score, 1)}</td>
                                <td>{num(d.overall_score, 1)}</td>
                            </tr>
                        ))}
                    </Table>
                </Section>
            ) : null}
            <Section title={t('no_budget')}>
                <Table caption={t('no_budget')} count={(doc.no_budget || []).length} head={[t('system'), t('department'), t('reason')]}>
                    {(doc.no_budget || []).map((x) => (
                        <tr><td>{x.system}</td><td>{x.department}</td><td>{(x.reasons || []).map((z) => tv('nb', z)).join('、')}</td></tr>
                    ))}
                </Table>
            </Section>
        </div>
    );
}

function Stat({ label, value }) {
    return (
        <div class="card-stat">
            <span class="stat-label">{label}</span>
            <span class="stat-value">{value}</span>
        </div>
    );
}

// ---- the operations report

export function OperationsPage({ role, query }) {
    const [month, setMonth] = useState(query.month || this_month());
    const [dept, setDept] = useState(query.department || '');
    const params = { month: query.month || this_month(), department: query.department || '' };
    const r = useLoad(() => get(`reports/operations${q(params)}`), [params.month, params.department]);
    return (
        <Page title={`${t('operations_report')} ${params.month}`} wide>
            <form class="filters no-print" onSubmit={(e) => {
                e.preventDefault();
                navigate(href('/reports/operations', { month, department: dept }));
            }} aria-label={t('show')}>
                <Field label={t('month')}><input type="month" required value={month} onInput={(e) => setMonth(e.currentTarget.value)} /></Field>
                <DeptPicker role={role} value={dept} onChange={setDept} />
                <div class="form-actions"><button type="submit" class="btn-primary">{t('show')}</button></div>
            </form>
            <div class="no-print">
                <Downloads path="reports/operations" params={params} />
                <p><Link to={href('/print/operations', params)}>{t('print_view')}</Link></p>
            </div>
            <Loaded r={r}>{(doc) => <Operations doc={doc} month={params.month} />}</Loaded>
        </Page>
    );
}

// The whole city: one row per department, each linked to its own section (a city of 200
// departments and 5,000 instances would otherwise be 5,000 rows and 200 charts); one
// department: its section in full.
function Operations({ doc, month }) {
    const ds = doc.departments || [];
    return (
        <div class="report" data-report="operations">
            <Facts rows={[[t('generated_at'), <Time iso={doc.generated_at} />], [t('period'), <><Time iso={doc.period_from} date /> – <Time iso={doc.period_to} date /></>]]} />
            {ds.length === 0 ? <p class="empty">{t('empty_list')}</p> : null}
            {ds.length > 1 ? (
                <Table caption={t('operations_report')} head={[t('department'), t('instances'), t('instance_hours'), t('availability'), t('cpu_avg'), t('rightsizing'), t('events')]}>
                    {ds.map((d) => (
                        <tr>
                            <td>{month ? <Link to={href('/reports/operations', { month, department: d.id })}>{d.name}</Link> : d.name}</td>
                            <td>{num(d.totals && d.totals.instances, 0)}</td>
                            <td>{num(d.totals && d.totals.instance_hours, 1)}</td>
                            <td>{pct(d.totals && d.totals.availability)}</td>
                            <td>{pct(d.totals && d.totals.cpu_utilization_avg)}</td>
                            <td>{(d.findings || []).length}</td>
                            <td>{(d.events || []).length}</td>
                        </tr>
                    ))}
                </Table>
            ) : ds.map((d) => <OpsDept d={d} />)}
        </div>
    );
}

function OpsDept({ d }) {
    const tot = d.totals || {};
    const daily = d.daily || [];
    const chart = {
        grid: { left: 48, right: 16, top: 36, bottom: 28 },
        tooltip: { trigger: 'axis' },
        legend: { top: 0 },
        xAxis: { type: 'category', data: daily.map((x) => x.day) },
        yAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
        series: [
            { type: 'line', name: t('cpu_util'), data: daily.map((x) => (x.cpu_utilization === null ? null : Math.round(x.cpu_utilization * 1000) / 10)) },
            { type: 'line', name: t('mem_util'), data: daily.map((x) => (x.memory_utilization === null ? null : Math.round(x.memory_utilization * 1000) / 10)) },
        ],
    };
    return (
        <Section title={d.name}>
            <div class="cards">
                <Stat label={t('instances')} value={num(tot.instances, 0)} />
                <Stat label={t('instance_hours')} value={num(tot.instance_hours, 1)} />
                <Stat label={t('availability')} value={pct(tot.availability)} />
                <Stat label={t('cpu_avg')} value={pct(tot.cpu_utilization_avg)} />
            </div>
            {daily.length ? (
                <figure class="chart-box">
                    <figcaption>{t('daily_util')}</figcaption>
                    <Chart option={chart} label={t('chart_alt', { m: `${d.name} ${t('daily_util')}` })} />
                </figure>
            ) : null}
            <Table caption={`${d.name} · ${t('instances')}`} count={(d.instances || []).length}
                head={[t('instance'), t('system'), t('vcpus'), t('memory'), t('instance_hours'), t('cpu_util'), `${t('memory')} (${t('avg')})`]}>
                {(d.instances || []).map((i) => (
                    <tr>
                        <td>{i.name}</td>
                        <td>{i.system}</td>
                        <td>{i.vcpus}</td>
                        <td>{mib(i.memory_mib)}</td>
                        <td>{num(i.instance_hours, 1)}</td>
                        <td>{pct(i.cpu_utilization_avg)}</td>
                        <td>{mib(i.memory_used_mib_avg)}</td>
                    </tr>
                ))}
            </Table>
            {(d.findings || []).length ? (
                <Table caption={`${d.name} · ${t('rightsizing')}`} head={[t('instance'), t('finding'), t('evidence'), t('recommended'), t('frees')]}>
                    {d.findings.map((f) => (
                        <tr>
                            <td>{f.instance}</td>
                            <td>{f.id ? <Link to={`/findings/${f.id}`}>{tv('fk', f.kind)}</Link> : tv('fk', f.kind)}</td>
                            <td>{f.rule}</td>
                            <td>{f.kind === 'idle' ? t('reclaim') : `${f.recommended_vcpus} vCPU / ${mib(f.recommended_memory_mib)}`}</td>
                            <td>{`${f.frees_vcpus} vCPU / ${mib(f.frees_memory_mib)}`}</td>
                        </tr>
                    ))}
                </Table>
            ) : null}
            {(d.events || []).length ? (
                <Table caption={`${d.name} · ${t('events')}`} head={[t('time'), t('kind'), t('message'), t('resolved_at')]}>
                    {d.events.map((e) => (
                        <tr><td><Time iso={e.first_seen} /></td><td>{tv('ek', e.kind)}</td><td>{e.message}</td><td><Time iso={e.resolved_at} /></td></tr>
                    ))}
                </Table>
            ) : null}
        </Section>
    );
}

// ---- print views: the report alone, no header or navigation, and the browser's print dialog

export function PrintAssessment({ query }) {
    const r = useLoad(() => get(`reports/assessment${q({ year: query.year || this_year(), department: query.department })}`), [query.year, query.department]);
    return (
        <Page title={`${t('assessment_report')} ${query.year || this_year()}`} wide
            actions={<PrintButtons back={href('/reports/assessment', query)} />}>
            <Loaded r={r}>{(doc) => <Assessment doc={doc} />}</Loaded>
        </Page>
    );
}

export function PrintOperations({ query }) {
    const r = useLoad(() => get(`reports/operations${q({ month: query.month || this_month(), department: query.department })}`), [query.month, query.department]);
    return (
        <Page title={`${t('operations_report')} ${query.month || this_month()}`} wide
            actions={<PrintButtons back={href('/reports/operations', query)} />}>
            <Loaded r={r}>{(doc) => <Operations doc={doc} />}</Loaded>
        </Page>
    );
}

function PrintButtons({ back }) {
    return (
        <span class="no-print button-row">
            <button type="button" class="btn-primary" onClick={() => window.print()}>{t('print')}</button>
            <Link to={back} class="btn-link">{t('back')}</Link>
        </span>
    );
}

export { Err };
