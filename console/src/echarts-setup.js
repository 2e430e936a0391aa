// SPDX-License-Identifier: Apache-2.0
// Apache ECharts, only the parts the console draws (tree-shaken by esbuild): line and bar
// charts on a grid with tooltip and legend, rendered to canvas. Loaded on demand, as a chunk
// of its own, by the pages that draw a chart.
import * as echarts from 'echarts/core';
import { BarChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, BarChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

export default echarts;
