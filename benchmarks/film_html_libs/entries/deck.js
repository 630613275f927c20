import {Deck, OrthographicView} from '@deck.gl/core';
import {ScatterplotLayer} from '@deck.gl/layers';
window.deck = {Deck, OrthographicView, ScatterplotLayer};
