//! smoluchowski-metrics
