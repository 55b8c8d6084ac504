"""The networks learners read, each file helpers → blocks → network → constructors.

- :mod:`book.nets.shortcuts`   every shortcut module (option A/B/C, scaled, gated, 1×1 conv, dropout)
- :mod:`book.nets.conv1d`      plain and residual 1-D conv nets, He et al.'s 6n+2 family (Chapters 1, 2, 4, 5)
- :mod:`book.nets.mlp`         plain and residual MLP stacks with ten initializations (Chapters 2, 3)
- :mod:`book.nets.resnets`     image ResNets: CIFAR 6n+2, ImageNet 18–152, pre-activation blocks (Chapter 4)
- :mod:`book.nets.transformer` a small transformer with post-LN, pre-LN, DeepNorm and ReZero blocks (Chapter 6)
"""
