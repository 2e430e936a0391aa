// SPDX-License-Identifier: Apache-2.0
// The console's frame: the session, the language, hash routing (#/requests/12 works under any
// proxy prefix), the header with the unread count, the navigation of each role.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { expired, get, load_session, session, sign_out, unread } from './api.js';
import { lang, set_lang, t } from './i18n.js';
import { time_zone } from './fmt.js';
import { useSignal } from './signal.js';
import { route, navigate, match } from './router.js';
import { Link, Page, Err } from './ui.jsx';
import { routes } from './routes.jsx';
import { SignIn, SetPassword } from './pages/auth.jsx';

const NAV = {
    department: [['/requests', 'nav_my_requests'], ['/queue', 'nav_todo'], ['/requests/new', 'nav_new_request'],
        ['/systems', 'nav_systems'], ['/allocations', 'nav_allocations'], ['/findings', 'nav_findings'],
        ['/security', 'nav_security'], ['/reports/costs', 'nav_costs'], ['/reports', 'nav_reports']],
    reviewer: [['/dashboard', 'nav_dashboard'], ['/queue', 'nav_queue'], ['/requests', 'nav_requests'],
        ['/allocations', 'nav_allocations'], ['/findings', 'nav_findings'], ['/hosts', 'nav_hosts'],
        ['/jobs', 'nav_jobs'], ['/security', 'nav_security'], ['/reports/costs', 'nav_costs'],
        ['/reports/service-quality', 'nav_service_quality'], ['/reports', 'nav_reports'],
        ['/audit', 'nav_audit']],
    consultant: [['/queue', 'nav_todo'], ['/requests', 'nav_assigned']],
    vendor: [['/hosts', 'nav_hosts'], ['/jobs', 'nav_jobs'], ['/events', 'nav_events'],
        ['/trials', 'nav_trials'], ['/requests', 'nav_requests'], ['/allocations', 'nav_allocations'],
        ['/security', 'nav_security'], ['/reports/service-quality', 'nav_service_quality'],
        ['/reports', 'nav_reports']],
    auditor: [['/audit', 'nav_audit'], ['/requests', 'nav_requests'], ['/allocations', 'nav_allocations'],
        ['/findings', 'nav_findings'], ['/hosts', 'nav_hosts'], ['/jobs', 'nav_jobs'],
        ['/events', 'nav_events'], ['/security', 'nav_security'], ['/reports/costs', 'nav_costs'],
        ['/reports/service-quality', 'nav_service_quality'], ['/reports', 'nav_reports'],
        ['/departments', 'nav_departments'], ['/accounts', 'nav_accounts']],
    admin: [['/departments', 'nav_departments'], ['/accounts', 'nav_accounts'],
        ['/policies', 'nav_policies'], ['/health', 'nav_health']],
};

export const HOME = {
    department: '/requests', reviewer: '/dashboard', consultant: '/queue', vendor: '/hosts',
    auditor: '/audit', admin: '/departments',
};

function LangSwitch() {
    const l = useSignal(lang);
    return (
        <button type="button" class="lang" lang={l === 'en' ? 'zh-CN' : 'en'}
            aria-label={t('switch_lang_label')} onClick={() => set_lang(l === 'en' ? 'zh-CN' : 'en')}>
            {t('switch_lang')}
        </button>
    );
}

function Header({ s, path }) {
    const n = useSignal(unread);
    const [open, setOpen] = useState(false);
    const items = NAV[s.account.role] || [];
    // The longest nav prefix of the path is the current page.
    let current = '';
    for (const [to] of items) {
        if ((path === to || path.startsWith(`${to}/`)) && to.length > current.length && !(to === '/requests' && path === '/requests/new')) current = to;
    }
    useEffect(() => setOpen(false), [path]);
    return (
        <header class="top" role="banner">
            <div class="top-row">
                <Link to={HOME[s.account.role] || '/'} class="brand">{t('app_name')}</Link>
                <div class="top-tools">
                    {/* Its name is its text (visible words first, then "unread" for screen
                        readers): an aria-label that differs from the visible text fails axe's
                        label-content-name-mismatch in English. */}
                    <Link to="/notifications" class="bell">
                        {t('notifications')}
                        <span class={n ? 'count count-on' : 'count'} data-testid="unread">{n}</span>
                        <span class="sr-only"> {t('unread')}</span>
                    </Link>
                    <LangSwitch />
                    <Link to="/account" class="who" title={t(`role_${s.account.role}`)}>
                        {s.account.name}
                        <span class="who-role">{t(`role_${s.account.role}`)}</span>
                    </Link>
                    <button type="button" class="signout" onClick={() => sign_out().then(() => navigate('/'))}>
                        {t('sign_out')}
                    </button>
                    <button type="button" class="menu-toggle" aria-expanded={open ? 'true' : 'false'}
                        aria-controls="main-nav" onClick={() => setOpen(!open)}>{t('menu')}</button>
                </div>
            </div>
            <nav id="main-nav" class={open ? 'nav nav-open' : 'nav'} aria-label={t('nav_label')}>
                <ul>
                    {items.map(([to, key]) => (
                        <li>
                            <Link to={to} aria-current={to === current ? 'page' : undefined}>{t(key)}</Link>
                        </li>
                    ))}
                </ul>
            </nav>
        </header>
    );
}

function Body({ s, r }) {
    const m = match(routes, r.path, s.account.role);
    if (!m) {
        return <Page title={t('not_found')}><p>{t('not_found')}</p></Page>;
    }
    if (m.forbidden) {
        return <Page title={t('forbidden')}><p>{t('forbidden')}</p></Page>;
    }
    const C = m.route.page;
    return <C {...m.params} query={r.query} role={s.account.role} s={s} key={r.path} />;
}

function App() {
    const s = useSignal(session);
    const r = useSignal(route);
    useSignal(lang);
    const [boot_err, setBootErr] = useState(null);

    useEffect(() => {
        get('health').then((h) => h && h.time_zone && time_zone.set(h.time_zone), () => {});
        load_session().catch(setBootErr);
    }, []);

    // Keep the unread count fresh (every 30 s) while signed in.
    useEffect(() => {
        if (!s) return undefined;
        const id = setInterval(() => {
            get('whoami').then((w) => w && typeof w.unread_notifications === 'number' && unread.set(w.unread_notifications), () => {});
        }, 30000);
        return () => clearInterval(id);
    }, [s]);

    // Move the focus to the new page's heading after a navigation (screen readers, keyboard).
    useEffect(() => {
        const h = document.getElementById('page-title');
        if (h && document.activeElement && document.activeElement.tagName !== 'INPUT') h.focus({ preventScroll: true });
    }, [r.path]);

    if (boot_err) return <main id="main" class="center"><Err error={boot_err} /></main>;
    if (s === undefined) return <main id="main" class="center"><p class="loading" role="status">{t('loading')}</p></main>;

    if (r.path === '/set-password') {
        return <Shell><SetPassword query={r.query} /></Shell>;
    }
    if (!s) {
        return <Shell><SignIn expired={expired.get()} /></Shell>;
    }
    if (r.path === '/' || r.path === '') {
        navigate(HOME[s.account.role] || '/notifications', true);
        return null;
    }
    const print = r.path.startsWith('/print/');
    return (
        <div class={print ? 'app app-print' : 'app'}>
            <a href="#main" class="skip" onClick={(e) => {
                e.preventDefault();
                const h = document.getElementById('page-title');
                if (h) h.focus();
            }}>{t('skip_to_main')}</a>
            {print ? null : <Header s={s} path={r.path} />}
            <main id="main" data-role={s.account.role}>
                <Body s={s} r={r} />
            </main>
        </div>
    );
}

function Shell({ children }) {
    return (
        <div class="app app-plain">
            <header class="top" role="banner">
                <div class="top-row">
                    <span class="brand">{t('app_name')}</span>
                    <div class="top-tools"><LangSwitch /></div>
                </div>
            </header>
            <main id="main" class="center">{children}</main>
        </div>
    );
}

document.documentElement.lang = lang.get();
const root = document.getElementById('app');
root.textContent = '';
render(<App />, root);
