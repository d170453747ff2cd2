//! smoluchowski-samplers
