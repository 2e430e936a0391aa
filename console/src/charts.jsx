// SPDX-License-Identifier: Apache-2.0
// A chart drawn by ECharts on a canvas. The canvas is an image to assistive technology (role
// img with a label); every chart has its figures in a table beside it.
import { useEffect, useRef } from 'preact/hooks';
import { lang } from './i18n.js';

let loading = null;
function load() {
    if (!loading) loading = import('./echarts-setup.js').then((m) => m.default);
    return loading;
}

export const COLORS = ['#1f5fa8', '#c0561b', '#2e7d4f', '#7a4fa3', '#6b6b6b'];

export function Chart({ option, label, height = 220 }) {
    const el = useRef(null);
    const chart = useRef(null);
    useEffect(() => {
        let live = true;
        let ro = null;
        load().then((echarts) => {
            if (!live || !el.current) return;
            el.current.style.setProperty('height', `${height}px`);
            chart.current = echarts.init(el.current, null, { renderer: 'canvas', locale: lang.get() === 'en' ? 'EN' : 'ZH' });
            chart.current.setOption({ color: COLORS, animation: false, textStyle: { fontFamily: 'inherit' }, ...option });
            el.current.dataset.rendered = 'true';
            if (window.ResizeObserver) {
                ro = new ResizeObserver(() => chart.current && chart.current.resize());
                ro.observe(el.current);
            }
        });
        return () => {
            live = false;
            if (ro) ro.disconnect();
            if (chart.current) chart.current.dispose();
            chart.current = null;
        };
    }, [JSON.stringify(option), height]);
    return <div class="chart" ref={el} role="img" aria-label={label} />;
}
