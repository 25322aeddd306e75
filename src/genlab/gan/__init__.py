"""GANs: StyleGAN2 (+ ADA) and the DCGAN baseline, their training task, latent tools and collapse monitor."""
