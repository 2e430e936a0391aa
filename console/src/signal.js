// SPDX-License-Identifier: Apache-2.0
// A value that components can watch: the language, the session, the unread count.
import { useEffect, useState } from 'preact/hooks';

export function signal(initial) {
    let value = initial;
    const subs = new Set();
    return {
        get: () => value,
        set(v) {
            if (v === value) return;
            value = v;
            for (const fn of [...subs]) fn(v);
        },
        subscribe(fn) {
            subs.add(fn);
            return () => subs.delete(fn);
        },
    };
}

// The signal's value, re-rendering the component when it changes.
export function useSignal(sig) {
    const [v, setV] = useState(sig.get());
    useEffect(() => {
        setV(sig.get());
        return sig.subscribe(setV);
    }, [sig]);
    return v;
}
