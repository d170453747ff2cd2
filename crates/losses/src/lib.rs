//! smoluchowski-losses
