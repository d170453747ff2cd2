//! smoluchowski-nets
