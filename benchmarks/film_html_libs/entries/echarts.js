import * as echarts from 'echarts/core';
import {ScatterChart} from 'echarts/charts';
import {GridComponent, TooltipComponent} from 'echarts/components';
import {CanvasRenderer} from 'echarts/renderers';
echarts.use([ScatterChart, GridComponent, TooltipComponent, CanvasRenderer]);
window.echarts = echarts;
