// SPDX-License-Identifier: Apache-2.0
// Signing in, setting a password from the admin's one-time link, the own account's settings.
import { useState } from 'preact/hooks';
import { api, get, patch, post, session, sign_in } from '../api.js';
import { t } from '../i18n.js';
import { navigate } from '../router.js';
import { Check, Err, Facts, Field, Form, Loaded, Notice, Page, Time, useLoad } from '../ui.jsx';

export function SignIn({ expired }) {
    const [name, setName] = useState('');
    const [password, setPassword] = useState('');
    const [busy, setBusy] = useState(false);
    const [err, setErr] = useState(null);
    const submit = async (e) => {
        e.preventDefault();
        setBusy(true);
        setErr(null);
        try {
            await sign_in(name.trim(), password);
        } catch (x) {
            setErr(x);
            setPassword('');
        } finally {
            setBusy(false);
        }
    };
    return (
        <section class="card signin" aria-labelledby="page-title">
            <h1 id="page-title" tabindex="-1">{t('sign_in_title')}</h1>
            {expired ? <p class="notice notice-warn" role="status">{t('session_expired')}</p> : null}
            <form onSubmit={submit} class="form" aria-label={t('sign_in')}>
                <Field label={t('username')}>
                    <input name="username" autocomplete="username" required value={name}
                        onInput={(e) => setName(e.currentTarget.value)} />
                </Field>
                <Field label={t('password')}>
                    <input name="password" type="password" autocomplete="current-password" required
                        value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
                </Field>
                <div class="form-actions">
                    <button type="submit" class="btn-primary" disabled={busy}>{busy ? t('signing_in') : t('sign_in')}</button>
                </div>
                <Err error={err} />
            </form>
        </section>
    );
}

export function SetPassword({ query }) {
    const [pw, setPw] = useState('');
    const [pw2, setPw2] = useState('');
    const [done, setDone] = useState(false);
    const [err, setErr] = useState(null);
    const submit = async (e) => {
        e.preventDefault();
        setErr(null);
        if (pw !== pw2) {
            setErr({ code: 'mismatch', message: t('passwords_differ') });
            return;
        }
        try {
            await api('POST', 'password/setup', { token: query.token || '', password: pw });
            setDone(true);
        } catch (x) {
            setErr(x);
        }
    };
    if (done) {
        return (
            <section class="card signin" aria-labelledby="page-title">
                <h1 id="page-title" tabindex="-1">{t('set_password')}</h1>
                <Notice>{t('password_set')}</Notice>
                <p><a href="#/" class="btn-link">{t('sign_in')}</a></p>
            </section>
        );
    }
    return (
        <section class="card signin" aria-labelledby="page-title">
            <h1 id="page-title" tabindex="-1">{t('set_password')}</h1>
            <p>{t('set_password_intro')}</p>
            <form onSubmit={submit} class="form" aria-label={t('set_password')}>
                <Field label={t('new_password')} hint={t('password_rule')}>
                    <input type="password" name="new-password" autocomplete="new-password" required minLength={10}
                        value={pw} onInput={(e) => setPw(e.currentTarget.value)} />
                </Field>
                <Field label={t('confirm_password')}>
                    <input type="password" name="confirm-password" autocomplete="new-password" required
                        value={pw2} onInput={(e) => setPw2(e.currentTarget.value)} />
                </Field>
                <div class="form-actions">
                    <button type="submit" class="btn-primary">{t('set_password')}</button>
                </div>
                {err && err.code === 'mismatch' ? <p class="error" role="alert">{err.message}</p> : <Err error={err} />}
            </form>
        </section>
    );
}

export function Account({ s }) {
    const me = useLoad(() => get('whoami'), []);
    const [cur, setCur] = useState('');
    const [pw, setPw] = useState('');
    const [pw2, setPw2] = useState('');
    const [email, setEmail] = useState(null);
    const [notify, setNotify] = useState(null);
    const a = s.account;
    return (
        <Page title={t('my_account')}>
            {a.must_change_password ? <Notice kind="warn">{t('must_change_password')}</Notice> : null}
            <Facts rows={[
                [t('username'), a.name],
                [t('role'), t(`role_${a.role}`)],
                a.department_name ? [t('department'), a.department_name] : null,
                [t('session_until'), <Time iso={s.expires_at} />],
            ]} />
            <h2>{t('change_password')}</h2>
            <Form submit={t('change_password')} label={t('change_password')} done={t('password_changed')}
                onSubmit={async () => {
                    if (pw !== pw2) throw { code: 'mismatch', message: t('passwords_differ') };
                    await post('session/password', { current_password: cur, new_password: pw });
                    setCur('');
                    setPw('');
                    setPw2('');
                    // A new cookie was issued for this session: read its CSRF token again.
                    session.set(await get('session'));
                }}>
                <Field label={t('current_password')}>
                    <input type="password" autocomplete="current-password" required value={cur}
                        onInput={(e) => setCur(e.currentTarget.value)} />
                </Field>
                <Field label={t('new_password')} hint={t('password_rule')}>
                    <input type="password" autocomplete="new-password" required value={pw}
                        onInput={(e) => setPw(e.currentTarget.value)} />
                </Field>
                <Field label={t('confirm_password')}>
                    <input type="password" autocomplete="new-password" required value={pw2}
                        onInput={(e) => setPw2(e.currentTarget.value)} />
                </Field>
            </Form>
            <h2>{t('account_settings')}</h2>
            <Loaded r={me}>{(w) => (
                <Form submit={t('save')} label={t('account_settings')} done={t('done')}
                    onSubmit={() => patch('whoami', {
                        email: (email ?? w.email ?? '') || null,
                        email_notifications: notify ?? w.email_notifications ?? true,
                    })}>
                    <Field label={t('email')}>
                        <input type="email" autocomplete="email" value={email ?? w.email ?? ''}
                            onInput={(e) => setEmail(e.currentTarget.value)} />
                    </Field>
                    <Check label={t('email_notifications')} checked={notify ?? w.email_notifications ?? true}
                        onChange={setNotify} />
                </Form>
            )}</Loaded>
            <p><a href="#/" onClick={(e) => {
                e.preventDefault();
                navigate('/');
            }}>{t('back')}</a></p>
        </Page>
    );
}
