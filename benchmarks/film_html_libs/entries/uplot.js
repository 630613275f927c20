import uPlot from 'uplot';
window.uPlot = uPlot;
