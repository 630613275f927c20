import createScatterplot from 'regl-scatterplot';
window.createScatterplot = createScatterplot;
